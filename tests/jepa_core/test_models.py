from __future__ import annotations

import torch

from jepa_core.masks import BlockMaskSampler
from jepa_core.models import IJepa, JepaEncoder, Packing, packable, sincos_pos_embed_2d


def test_sincos_pos_embed_2d__shape_and_distinct_positions():
    pe = sincos_pos_embed_2d(4, 5, 16)
    assert pe.shape == (20, 16)
    assert torch.cdist(pe, pe).add(torch.eye(20)).min() > 0  # every position has its own code


def test_update_target__one_ema_step_exact(tiny_config):
    torch.manual_seed(0)
    model = IJepa(tiny_config, in_chans=1)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in model.target.parameters()]
    online = [p.clone() for p in model.encoder.parameters()]
    model.update_target(0.9)
    for t, b, o in zip(model.target.parameters(), before, online, strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    assert not any(p.requires_grad for p in model.target.parameters())


def test_encoder__padding_does_not_change_valid_tokens():
    torch.manual_seed(0)
    enc = JepaEncoder(16, 4, 1, 32, 2, 2).eval()
    x = torch.randn(1, 1, 16, 16)
    idx = torch.tensor([[0, 3, 5, 9]])
    alone = enc(x, idx, torch.ones_like(idx, dtype=torch.bool))
    padded_idx = torch.tensor([[0, 3, 5, 9, 0, 0]])
    valid = torch.tensor([[True, True, True, True, False, False]])
    padded = enc(x, padded_idx, valid)
    torch.testing.assert_close(padded[:, :4], alone, atol=1e-5, rtol=1e-5)


def _ragged_context() -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.tensor([[0, 3, 5, 9, 12, 15], [1, 2, 7, 0, 0, 0], [4, 6, 8, 10, 11, 0]])
    valid = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] * 5 + [False]])
    return idx, valid


def test_packing__round_trip_and_mask():
    _, valid = _ragged_context()
    packing = Packing.of(valid)
    x = torch.arange(18.0).view(3, 6)
    packed = packing.pack(x)
    assert packed.tolist() == x[valid].tolist()
    torch.testing.assert_close(packing.unpack(packed), torch.where(valid, x, 0.0))
    assert packing.key_ok is not None and packing.key_ok.shape == (3, 1, 1, 6)
    assert Packing.of(torch.ones(2, 4, dtype=torch.bool)).key_ok is None  # nothing padded: unmasked attention


def test_encoder__packed_tokens_equal_padded_batch_in_values_and_gradients():
    """Packed tokens (token-wise layers on valid tokens only) compute what the padded, masked batch does."""
    torch.manual_seed(0)
    enc = JepaEncoder(16, 4, 1, 32, 2, 2).train()
    images = torch.randn(3, 1, 16, 16)
    idx, valid = _ragged_context()
    packed = enc(images, idx, valid)
    packed_grads = torch.autograd.grad((packed * valid[..., None]).square().sum(), list(enc.parameters()))
    x = enc.vit.patch_embed(images) + enc.pos_embed
    x = torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))
    for blk in enc.vit.blocks:
        x = blk(x, attn_mask=valid[:, None, None, :])
    padded = enc.vit.norm(x) * valid[..., None]
    padded_grads = torch.autograd.grad(padded.square().sum(), list(enc.parameters()))
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    assert packed[~valid].abs().max() == 0
    for a, b in zip(packed_grads, padded_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_encoder__active_stochastic_depth_is_never_packed():
    """Drop path drops whole samples (single tokens, were they packed), so those blocks stay padded."""
    enc = JepaEncoder(16, 4, 1, 32, 2, 2, drop_path=0.5)
    assert not packable(enc.vit.blocks[-1])
    assert packable(enc.vit.blocks[-1].eval())
    assert packable(enc.vit.blocks[0].train())  # rate 0 in the first block (the rate grows with depth)
    torch.manual_seed(0)
    idx, valid = _ragged_context()
    out = enc.train()(torch.randn(3, 1, 16, 16), idx, valid)
    assert out.shape == (3, 6, 32) and torch.isfinite(out).all() and out[~valid].abs().max() == 0


def test_predictor__one_pass_equals_one_block_at_a_time(tiny_config):
    torch.manual_seed(0)
    model = IJepa(tiny_config, in_chans=1).eval()
    masks = BlockMaskSampler(4, 4, ratio=0.4, num_targets=3)(2, torch.Generator().manual_seed(1))
    z = torch.randn(2, masks.context_idx.shape[1], tiny_config.model.embed_dim)
    joint = model.predictor(z, masks.context_idx, masks.context_valid, masks.target_idx)
    for k in range(masks.target_idx.shape[1]):
        single = model.predictor(z, masks.context_idx, masks.context_valid, masks.target_idx[:, k : k + 1])
        torch.testing.assert_close(joint[:, k], single[:, 0], atol=1e-5, rtol=1e-5)


def test_loss__gradients_reach_encoder_and_predictor_not_target(tiny_config):
    torch.manual_seed(0)
    model = IJepa(tiny_config, in_chans=1)
    masks = BlockMaskSampler(4, 4, ratio=0.4)(3, torch.Generator().manual_seed(0))
    loss = model.loss(torch.randn(3, 1, 16, 16), masks.context_idx, masks.context_valid, masks.target_idx)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert model.encoder.vit.blocks[0].attn.qkv.weight.grad is not None
    assert model.predictor.mask_token.grad is not None
    assert all(p.grad is None for p in model.target.parameters())
