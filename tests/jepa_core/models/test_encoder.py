from __future__ import annotations

import torch

from jepa_core.models import JepaEncoder, packable
from tests.jepa_core.models.ragged import ragged_context


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


def test_encoder__packed_tokens_equal_padded_batch_in_values_and_gradients():
    """Packed tokens (token-wise layers on valid tokens only) compute what the padded, masked batch does."""
    torch.manual_seed(0)
    enc = JepaEncoder(16, 4, 1, 32, 2, 2).train()
    images = torch.randn(3, 1, 16, 16)
    idx, valid = ragged_context()
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
    idx, valid = ragged_context()
    out = enc.train()(torch.randn(3, 1, 16, 16), idx, valid)
    assert out.shape == (3, 6, 32) and torch.isfinite(out).all() and out[~valid].abs().max() == 0
