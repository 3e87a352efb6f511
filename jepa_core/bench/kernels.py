"""Where one CPU step's operator time goes, from ``torch.profiler``, and how fast its matmul and attention
kernels run (FLOPs from :mod:`jepa_core.bench.flops` over the profiler's self time)."""

from __future__ import annotations

from typing import Any

from torch.profiler import ProfilerActivity, profile

from jepa_core.bench.flops import flops_by_op
from jepa_core.bench.step import StepBench

MATMUL_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "addbmm"})


def op_kind(name: str) -> str:
    """``"matmul"``, ``"attention"`` or ``"other"`` for an aten operator (``aten::mm`` or ``aten.mm``)."""
    op = name.removeprefix("aten::").removeprefix("aten.").split(".")[0]
    if op in MATMUL_OPS:
        return "matmul"
    return "attention" if "attention" in op else "other"


def kernel_breakdown(bench: StepBench, peak_gflops: float) -> dict[str, Any]:
    """Where one CPU step's operator time goes, and how fast its matmul and attention kernels run.

    One step runs under the FLOP counter (FLOPs by operator), then the same step again (same mask draw, hence
    the same shapes) under ``torch.profiler`` (self time by operator). ``ceiling_fraction_of_peak`` is the
    fraction of the matmul peak the step would reach if every operator other than the matmuls and the
    attention kernels took no time: the most that removing overhead alone could give on this machine.
    """
    state = bench.generator.get_state()
    flops = {"matmul": 0, "attention": 0, "other": 0}
    for op, n in flops_by_op(bench.step).items():
        flops[op_kind(op)] += n
    bench.generator.set_state(state)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        bench.step()
    seconds = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            seconds[op_kind(event.key)] += event.self_cpu_time_total / 1e6
    total_s = sum(seconds.values())
    kernel_s = seconds["matmul"] + seconds["attention"]
    return {
        "operator_s": total_s,
        "time_shares": {k: v / total_s for k, v in seconds.items()},
        "matmul_gflops": flops["matmul"] / 1e9 / max(seconds["matmul"], 1e-9),
        "attention_gflops": flops["attention"] / 1e9 / max(seconds["attention"], 1e-9),
        "attention_share_of_flops": flops["attention"] / max(sum(flops.values()), 1),
        "ceiling_fraction_of_peak": sum(flops.values()) / 1e9 / max(kernel_s, 1e-9) / peak_gflops,
    }
