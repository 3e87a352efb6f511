from __future__ import annotations

import torch

from jepa_core.models import build_encoder, build_ijepa

# The state-dict keys of the tiny config's model (encoder depth 2, predictor depth 1). Checkpoints store the
# encoder's, predictor's and target's state dicts under these names, so they must never change.
_BLOCK = [
    f"{layer}.{param}"
    for layer in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
    for param in ("weight", "bias")
]
ENCODER_KEYS = [
    "vit.patch_embed.proj.weight",
    "vit.patch_embed.proj.bias",
    *(f"vit.blocks.{i}.{key}" for i in range(2) for key in _BLOCK),
    "vit.norm.weight",
    "vit.norm.bias",
]
PREDICTOR_KEYS = [
    "mask_token",
    "embed.weight",
    "embed.bias",
    *(f"blocks.0.{key}" for key in _BLOCK),
    "norm.weight",
    "norm.bias",
    "proj.weight",
    "proj.bias",
]


def test_build_ijepa__state_dict_keys_are_the_checkpoints(tiny_config):
    model = build_ijepa(tiny_config, in_chans=1)
    assert list(model.encoder.state_dict()) == ENCODER_KEYS
    assert list(model.target.state_dict()) == ENCODER_KEYS
    assert list(model.predictor.state_dict()) == PREDICTOR_KEYS
    assert list(model.state_dict()) == [
        *(f"encoder.{k}" for k in ENCODER_KEYS),
        *(f"predictor.{k}" for k in PREDICTOR_KEYS),
        *(f"target.{k}" for k in ENCODER_KEYS),
    ]


def test_build_encoder__loads_the_target_of_build_ijepa(tiny_config):
    """``load_encoder``'s path: a target encoder's state dict loads strictly into ``build_encoder``'s."""
    torch.manual_seed(0)
    model = build_ijepa(tiny_config, in_chans=1)
    encoder = build_encoder(tiny_config, in_chans=1)
    encoder.load_state_dict(model.target.state_dict())
    images = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(encoder.eval()(images), model.target.eval()(images), atol=0.0, rtol=0.0)


def test_build_ijepa__same_weights_under_a_seed(tiny_config):
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(build_ijepa(tiny_config, in_chans=1))
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_ijepa__predictor_follows_config_one_pass(tiny_config):
    assert not build_ijepa(tiny_config, in_chans=1).predictor.one_pass
    tiny_config.predictor.one_pass = True
    assert build_ijepa(tiny_config, in_chans=1).predictor.one_pass
