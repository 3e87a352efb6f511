from __future__ import annotations

import pytest
import torch

from jepa_core.masks import BlockMaskSampler
from jepa_core.models import IJepa, JepaEncoder, JepaPredictor, build_ijepa


def test_update_target__one_ema_step_exact(tiny_config):
    torch.manual_seed(0)
    model = build_ijepa(tiny_config, in_chans=1)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in model.target.parameters()]
    online = [p.clone() for p in model.encoder.parameters()]
    model.update_target(0.9)
    for t, b, o in zip(model.target.parameters(), before, online, strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    assert not any(p.requires_grad for p in model.target.parameters())


def test_loss__gradients_reach_encoder_and_predictor_not_target(tiny_config):
    torch.manual_seed(0)
    model = build_ijepa(tiny_config, in_chans=1)
    masks = BlockMaskSampler(4, 4, ratio=0.4)(3, torch.Generator().manual_seed(0))
    loss = model.loss(torch.randn(3, 1, 16, 16), masks.context_idx, masks.context_valid, masks.target_idx)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert model.encoder.vit.blocks[0].attn.qkv.weight.grad is not None
    assert model.predictor.mask_token.grad is not None
    assert all(p.grad is None for p in model.target.parameters())


def test_ijepa__target_starts_as_a_copy_of_the_encoder():
    torch.manual_seed(0)
    encoder = JepaEncoder(16, 4, 1, 32, 2, 2)
    model = IJepa(encoder, JepaPredictor(grid=4, encoder_dim=32, embed_dim=16, depth=1, num_heads=2))
    assert model.encoder is encoder and model.target is not encoder
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(model.target.state_dict()[name], tensor), name


@pytest.mark.parametrize(
    ("predictor_kwargs", "match"),
    [({"grid": 4, "encoder_dim": 64}, "width"), ({"grid": 5, "encoder_dim": 32}, "patches")],
)
def test_ijepa__predictor_that_does_not_fit_the_encoder_raises(predictor_kwargs, match):
    encoder = JepaEncoder(16, 4, 1, 32, 1, 2)
    predictor = JepaPredictor(**predictor_kwargs, embed_dim=16, depth=1, num_heads=2)
    with pytest.raises(ValueError, match=match):
        IJepa(encoder, predictor)
