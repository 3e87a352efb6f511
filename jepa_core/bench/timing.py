"""Wall and CPU clocks of one call, and the matmul peak measured with them in the same process.

Timing the peak with the same clocks, in the same run, makes achieved/peak a ratio from one machine state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timing(NamedTuple):
    """Wall seconds, and this process's CPU seconds over all its threads.

    On a CPU shared with other jobs the wall time grows with their load while the CPU time stays close to
    the work itself, so ratios of CPU times are the steadier cross-check there (meaningless on a GPU).
    """

    wall_s: float
    cpu_s: float


def timed(fn: Callable[[], Any], device: torch.device) -> Timing:
    """Wall and CPU seconds of ``fn()``, the device synchronised on both ends."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def matmul_peak_rates(
    device: torch.device, dtype: torch.dtype, size: int | None = None, reps: int = 8, tries: int = 3
) -> Timing:
    """Best-of-``tries`` GFLOP per wall second and per CPU second of a square matmul.

    The default size is 2048 on the CPU and 8192 on a GPU, where smaller products leave the tensor cores idle.
    """
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    gflop = 2 * size**3 * reps / 1e9
    runs = [timed(lambda: [a @ b for _ in range(reps)], device) for _ in range(tries)]
    return Timing(max(gflop / t.wall_s for t in runs), max(gflop / max(t.cpu_s, 1e-9) for t in runs))


def matmul_peak_gflops(
    device: torch.device, dtype: torch.dtype, size: int | None = None, reps: int = 8, tries: int = 3
) -> float:
    """Best-of-``tries`` GFLOP/s of a square matmul: the ceiling a dense training step can approach."""
    return matmul_peak_rates(device, dtype, size, reps, tries).wall_s


def matmul_peak_dtype(amp: torch.dtype | None) -> torch.dtype:
    """The matmul peak's dtype for a step autocast to ``amp``: bf16 under bf16 autocast, else fp32."""
    return torch.bfloat16 if amp is not None else torch.float32
