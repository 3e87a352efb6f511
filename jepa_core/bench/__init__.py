"""Throughput benchmark of the I-JEPA training step: FLOP counting, the matmul peak, the step bench, the CPU
and CUDA suites, and the side by side with the official step.

Modules, one idea each:

- :mod:`~jepa_core.bench.flops`: exact FLOPs by aten operator (torch's counter, CPU flash attention added).
- :mod:`~jepa_core.bench.timing`: wall and CPU clocks of a call; the matmul peak measured with them.
- :mod:`~jepa_core.bench.step`: :class:`StepBench` (the trainer's step on synthetic images) and
  :func:`run_bench`, the default measurement.
- :mod:`~jepa_core.bench.kernels`: where a CPU step's operator time goes (``torch.profiler``).
- :mod:`~jepa_core.bench.rounds`: several step paths timed in interleaved rounds, and their figures.
- :mod:`~jepa_core.bench.cpu_suite`, :mod:`~jepa_core.bench.cuda_suite`: the two ``--suite`` runs.
- :mod:`~jepa_core.bench.official_code`, :mod:`~jepa_core.bench.official_step`,
  :mod:`~jepa_core.bench.mask_match`, :mod:`~jepa_core.bench.official_suite`: ``--suite --official DIR``.
- :mod:`~jepa_core.bench.cli`: ``python -m jepa_core.bench`` (and the ``jepa-bench`` console script).

Importing this package is cheap: the names below load their module (and torch) on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jepa_core.bench.cli import main
    from jepa_core.bench.step import StepBench, run_bench
    from jepa_core.bench.timing import matmul_peak_gflops

__all__ = ["StepBench", "main", "matmul_peak_gflops", "run_bench"]

_MODULE_OF = {
    "main": "jepa_core.bench.cli",
    "StepBench": "jepa_core.bench.step",
    "run_bench": "jepa_core.bench.step",
    "matmul_peak_gflops": "jepa_core.bench.timing",
}


def __getattr__(name: str) -> Any:
    """The public names of :data:`__all__`, imported from their module when first asked for."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
