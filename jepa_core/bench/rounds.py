"""Several step paths timed in interleaved rounds, and each path's figures over those rounds.

Each round times one step of every path, in an order reversed every other round, then takes one matmul-peak
sample, so a change in machine load between rounds moves every path and the peak together. Every figure
below is a median over rounds, and every ratio a median over rounds of ratios within a round: the steps of
one round run back to back and see one machine state, where a ratio of two medians can mix a quiet round of
one path with a busy round of the other. The CPU suite and the side-by-side with the official step both
measure this way.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any, Protocol

import torch

from jepa_core.bench.timing import Timing, matmul_peak_rates

Rounds = list[Timing]  # one path's timings, one per round


class TimedPath(Protocol):
    """What a path needs to be timed in rounds (:class:`~jepa_core.bench.step.StepBench` and the official
    step's bench both are)."""

    mask_stats: list[dict[str, float]]

    def step(self) -> torch.Tensor: ...

    def time_step(self) -> Timing: ...

    def flops_per_img(self, reps: int = ...) -> float: ...


def warm_up(paths: Mapping[str, TimedPath], warmup: int) -> None:
    """``warmup`` untimed steps of every path, then forgets their masks (the stats are the timed steps')."""
    for path in paths.values():
        for _ in range(warmup):
            path.step()
        path.mask_stats.clear()


def interleave(
    paths: Mapping[str, TimedPath],
    rounds: int,
    device: torch.device,
    peak_dtype: torch.dtype,
    peak_size: int | None,
) -> tuple[dict[str, Rounds], Rounds]:
    """One step of each path per round (order reversed every other round) and one matmul-peak sample.

    Returns:
        Each path's timings and the peak's (GFLOP per wall and per CPU second), one per round.
    """
    times: dict[str, Rounds] = {name: [] for name in paths}
    peaks: Rounds = []
    for r in range(rounds):
        for name in list(paths)[:: 1 if r % 2 == 0 else -1]:
            times[name].append(paths[name].time_step())
        peaks.append(matmul_peak_rates(device, peak_dtype, peak_size, reps=2, tries=2))
    return times, peaks


def round_ratio(slow: Rounds, quick: Rounds, clock: str = "wall_s") -> float:
    """Median over rounds of ``slow``'s step time over ``quick``'s on ``clock`` (``wall_s`` or ``cpu_s``)."""
    pairs = zip(slow, quick, strict=True)
    return statistics.median(getattr(s, clock) / getattr(q, clock) for s, q in pairs)


def path_figures(
    ts: Rounds, peaks: Rounds, flops: float, batch: int, official: Rounds | None = None
) -> dict[str, Any]:
    """One path's figures over the rounds: img/s, step seconds, its own executed FLOPs per image, GFLOP/s,
    fraction of the round's peak (by wall and by CPU time), and every round's step seconds.

    With ``official`` (the official step's timings) also ``ratio_vs_official`` and its CPU-time twin: the
    official step's time over this path's, median over rounds (above 1: this path is faster).
    """
    med, gflop = statistics.median, flops * batch / 1e9
    figures = {
        "img_per_s": batch / med(t.wall_s for t in ts),
        "step_s_median": med(t.wall_s for t in ts),
        "flops_per_img": flops,
        "achieved_gflops": med(gflop / t.wall_s for t in ts),
        "fraction_of_peak": med(gflop / t.wall_s / p.wall_s for t, p in zip(ts, peaks, strict=True)),
        "cpu_s_median": med(t.cpu_s for t in ts),
        "fraction_of_peak_cpu_time": med(gflop / t.cpu_s / p.cpu_s for t, p in zip(ts, peaks, strict=True)),
    }
    if official is not None:
        figures["ratio_vs_official"] = round_ratio(official, ts)
        figures["ratio_vs_official_cpu_time"] = round_ratio(official, ts, "cpu_s")
    return {**figures, "step_s": [t.wall_s for t in ts]}
