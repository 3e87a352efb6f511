from __future__ import annotations

import pytest
import torch

from jepa_core.config import build_config
from jepa_core.masks import BlockMaskSampler, MaskBatch
from jepa_core.models import IJepa, build_ijepa
from jepa_core.naive_step import (
    encode_context,
    naive_loss,
    naive_train_step,
    per_image_indices,
    predict_per_block,
)
from jepa_core.optim import param_groups
from jepa_core.step import train_step

TINY = {
    "data.name": "imagefolder",
    "data.image_size": 16,
    "model.patch_size": 4,
    "model.embed_dim": 32,
    "model.depth": 2,
    "model.num_heads": 2,
    "predictor.depth": 2,
    "predictor.embed_dim": 16,
    "predictor.num_heads": 2,
    "mask.num_targets": 3,
    "mask.ratio": 0.3,
}


def _model(seed: int = 0) -> IJepa:
    torch.manual_seed(seed)
    model = build_ijepa(build_config(overrides=[TINY]), in_chans=3)
    with torch.no_grad():
        # A target that differs from the context encoder, so mixing the two up cannot go unnoticed.
        for p in model.target.parameters():
            p.add_(0.05 * torch.randn_like(p))
        # At init the predictor's context states barely move (small weights), which would let the one-pass
        # variant agree with the paper's predictor to float precision; larger weights tell them apart.
        for p in model.predictor.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def _batch(ragged: bool, batch: int = 5) -> tuple[torch.Tensor, MaskBatch]:
    sampler = BlockMaskSampler(4, 4, ratio=0.3, num_targets=3, context_scale=(0.6, 1.0), min_context=2)
    gen = torch.Generator().manual_seed(3)
    masks = sampler(batch, gen)
    assert not masks.context_valid.all(), "these seeds give ragged contexts"
    if not ragged:
        # Truncate every context to the shortest one, as the official collator does: no padding at all.
        shortest = int(masks.context_counts.min())
        idx = masks.context_idx[:, :shortest]
        masks = MaskBatch(idx, torch.ones_like(idx, dtype=torch.bool), masks.target_idx)
    images = torch.randn(batch, 3, 16, 16, generator=gen)
    return images, masks


def _fast_loss(model: IJepa, images: torch.Tensor, masks: MaskBatch, kind: str) -> torch.Tensor:
    return model.loss(images, masks.context_idx, masks.context_valid, masks.target_idx, kind)


def test_model__default_predictor_is_the_papers():
    """The fast path the baseline is compared with is the paper's predictor, not the one-pass variant."""
    assert not _model().predictor.one_pass


@pytest.mark.parametrize("kind", ["l2", "smooth_l1"])
@pytest.mark.parametrize("ragged", [True, False])
def test_naive_loss__equals_fast_path(kind, ragged):
    model = _model()
    images, masks = _batch(ragged)
    fast = _fast_loss(model, images, masks, kind)
    naive = naive_loss(model, images, masks, kind)
    torch.testing.assert_close(naive, fast, rtol=1e-5, atol=0.0)


def test_naive_loss__differs_from_the_one_pass_variant():
    """With two predictor layers the variant is a different model, so agreeing with it would be a bug."""
    model = _model()
    images, masks = _batch(ragged=True)
    model.predictor.one_pass = True
    with torch.no_grad():
        variant = float(_fast_loss(model, images, masks, "l2"))
        naive = float(naive_loss(model, images, masks, "l2"))
    assert abs(naive - variant) > 5e-4 * naive  # 2e-3 here; the equality tests hold to 1e-5


def test_naive_loss__gradients_equal_fast_path():
    model = _model()
    images, masks = _batch(ragged=True)
    params = {
        "encoder.qkv": model.encoder.vit.blocks[0].attn.qkv.weight,
        "encoder.patch": model.encoder.vit.patch_embed.proj.weight,
        "predictor.mask_token": model.predictor.mask_token,
        "predictor.fc2": model.predictor.blocks[1].mlp.fc2.weight,
    }
    fast = torch.autograd.grad(_fast_loss(model, images, masks, "l2"), list(params.values()))
    naive = torch.autograd.grad(naive_loss(model, images, masks, "l2"), list(params.values()))
    for name, g_fast, g_naive in zip(params, fast, naive, strict=True):
        torch.testing.assert_close(g_naive, g_fast, rtol=1e-4, atol=1e-7, msg=f"gradient of {name} differs")


def test_predict_per_block__blocks_are_independent():
    """Moving a target block changes only its own predictions: each block has its own pass."""
    model = _model()
    images, masks = _batch(ragged=True, batch=2)
    contexts, targets = per_image_indices(masks)
    z = encode_context(model.encoder, images, contexts)
    base = predict_per_block(model.predictor, z, contexts, targets)
    moved = [[(tb[0] + 1) % 16, *tb[1:]] for tb in targets]
    changed = predict_per_block(model.predictor, z, contexts, moved)
    b = len(targets)
    torch.testing.assert_close(changed[b:], base[b:])  # blocks 2..K untouched
    assert not torch.allclose(changed[:b], base[:b])


def test_naive_train_step__matches_train_step():
    images, masks = _batch(ragged=True)
    losses = []
    models = []
    for step_fn in (train_step, naive_train_step):
        model = _model()
        opt = torch.optim.AdamW(param_groups(model), lr=1e-3)
        kwargs = {"lr": 1e-3, "wd": 0.04, "momentum": 0.9, "loss_kind": "l2", "amp": None, "grad_clip": 1.0}
        losses.append([float(step_fn(model, opt, images, masks, **kwargs)) for _ in range(2)])
        models.append(model)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for p_fast, p_naive in zip(models[0].target.parameters(), models[1].target.parameters(), strict=True):
        torch.testing.assert_close(p_naive, p_fast, rtol=1e-4, atol=1e-6)


def test_naive_loss__rejects_stochastic_depth():
    model = build_ijepa(build_config(overrides=[TINY, {"model.drop_path": 0.1}]), in_chans=3)
    images, masks = _batch(ragged=True)
    with pytest.raises(ValueError, match="plain pre-norm"):
        naive_loss(model, images, masks)


@pytest.mark.parametrize("one_pass", [False, True])
def test_explicit_attention__equals_fused_in_loss_and_gradients(one_pass, monkeypatch):
    """The explicit matmul-and-softmax attention (what bf16 on a CPU runs) computes the fused kernel's loss
    and gradients, packed blocks included, and calls no fused kernel at all."""
    model = _model()
    model.predictor.one_pass = one_pass
    images, masks = _batch(ragged=True)
    params = [model.encoder.vit.blocks[0].attn.qkv.weight, model.predictor.blocks[1].attn.qkv.weight]
    fused_loss = _fast_loss(model, images, masks, "l2")
    fused = torch.autograd.grad(fused_loss, params)
    model.use_fused_attention(False)

    def refuse(*args, **kwargs):
        raise AssertionError("the fused attention kernel ran")

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", refuse)
    explicit_loss = _fast_loss(model, images, masks, "l2")
    explicit = torch.autograd.grad(explicit_loss, params)
    torch.testing.assert_close(explicit_loss, fused_loss, rtol=1e-5, atol=0.0)
    for g_explicit, g_fused in zip(explicit, fused, strict=True):
        torch.testing.assert_close(g_explicit, g_fused, rtol=1e-4, atol=1e-7)


def test_fused_attention__not_under_bf16_on_a_cpu():
    from jepa_core.devices import fused_attention

    assert fused_attention("cpu", None) and fused_attention("cuda", torch.bfloat16)
    assert not fused_attention("cpu", torch.bfloat16)
