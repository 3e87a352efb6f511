from __future__ import annotations

import torch

from jepa_core.masks import BlockMaskSampler
from jepa_core.models import IJepa, JepaEncoder, sincos_pos_embed_2d


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
