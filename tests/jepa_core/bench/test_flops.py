from __future__ import annotations

import torch

from jepa_core.bench.flops import EXTRA_FLOP_FORMULAS, count_flops


def test_count_flops__counts_cpu_flash_attention():
    q = torch.randn(2, 3, 10, 8, requires_grad=True)
    mask = torch.ones(2, 1, 10, 10, dtype=torch.bool)

    def attend() -> None:
        torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask).sum().backward()

    # Each product of two (L x d)-shaped operands costs 2 * B * H * L * L * d: two forward, five backward.
    assert count_flops(attend) == 7 * (2 * 2 * 3 * 10 * 10 * 8)
    assert len(EXTRA_FLOP_FORMULAS) == 2
