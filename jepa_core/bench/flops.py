"""Exact FLOP counts of a training step, by aten operator, with torch's FLOP counter.

torch's counter knows the CUDA attention kernels but not the CPU flash kernel that SDPA dispatches to on the
CPU; :data:`EXTRA_FLOP_FORMULAS` adds it, so the fast path's attention FLOPs do not silently count as zero
there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

Shape = tuple[int, ...]


# The counter hands these formulas the shapes of the op's arguments.
def _cpu_flash_flops(q: Shape, k: Shape, v: Shape, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(q, k, v)


def _cpu_flash_backward_flops(grad: Shape, q: Shape, k: Shape, v: Shape, *args: Any, **kwargs: Any) -> int:
    return sdpa_backward_flop_count(grad, q, k, v)


_ATEN = torch.ops.aten
EXTRA_FLOP_FORMULAS = {
    _ATEN._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flops,
    _ATEN._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward_flops,
}


def flops_by_op(fn: Callable[[], Any]) -> dict[str, int]:
    """FLOPs of everything ``fn`` runs (forward and backward), by aten operator (``"aten.mm"``, ...), CPU
    flash attention included."""
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
        fn()
    return {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of everything ``fn`` runs (forward and backward), CPU flash attention included."""
    return sum(flops_by_op(fn).values())
