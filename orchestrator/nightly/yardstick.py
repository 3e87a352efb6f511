"""The yardstick a night's timings are judged against: matmul-peak samples and other processes' CPU load.

Around every section the matmul peak of the section's device is sampled with the section's thread count
(before and after it; a bench section also measures its own): ``<section>.matmul_peak_gflops`` (the median
of the samples; a bench keeps its own) and ``<section>.matmul_peak_spread`` (max / min of them). Beside it,
``<section>.other_cpu_share``: the share of the CPUs this process may run on that other processes kept busy
during the section (the machine's busy CPU time, psutil, less this process's and its children's). The verdict
normalises the section's timings by the peak and trusts that only while the machine stayed near the
baseline's (orchestrator.nightly.verdict). Running the sections is orchestrator.nightly.measure's.

torch and psutil are imported where they are used: the suite's validation must stay cheap.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.nightly.metrics import OTHERS, PEAK, SPREAD
from orchestrator.nightly.suite import Suite


class TorchThreads:
    """Restores torch's thread count on exit: the trainer and the bench set it for the whole process."""

    def __enter__(self) -> None:
        import torch

        self.saved = torch.get_num_threads()

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.set_num_threads(self.saved)


@dataclass(frozen=True)
class PeakProbe:
    """How a section's matmul-peak samples are taken: on its device, with its torch thread count.

    The same threads as the section, so that the samples get the share of a busy CPU the section got.
    """

    device: str  # cpu | cuda | cuda:N
    threads: int  # torch CPU threads while sampling (0: the process's default, as the section)
    size: int | None  # the square matmul's side (None: jepa_core.bench's default for the device)


def sample_peak(probe: PeakProbe) -> float:
    """GFLOP/s of one matmul-peak sample: the best of 3 tries, exactly as ``run_bench`` measures its peak."""
    import torch

    from jepa_core.bench import matmul_peak_gflops

    device = torch.device(probe.device)
    with TorchThreads():
        if probe.threads > 0:
            torch.set_num_threads(probe.threads)
        return matmul_peak_gflops(
            device, torch.bfloat16 if device.type == "cuda" else torch.float32, probe.size
        )


def section_probes(suite: Suite) -> dict[str, PeakProbe | None]:
    """Each section's probe; None where its device is absent here (the section then skips itself)."""
    import torch

    from jepa_core.config import ConfigError
    from jepa_core.train import resolve_device

    sizes = {b.device: b.peak_size for b in suite.bench}  # one matmul size per device, the bench's own
    probes: dict[str, PeakProbe | None] = {}
    for b in suite.bench:
        cfg = b.trainer.config()
        usable = b.device == "cpu" or torch.cuda.is_available()
        probes[f"bench_{b.device}"] = (
            PeakProbe(b.device, cfg.train.num_threads, b.peak_size) if usable else None
        )
    if suite.quality is not None:
        cfg = suite.quality.trainer.config()
        try:
            device = resolve_device(cfg.train.device)
        except ConfigError:  # CUDA asked for, none here: the training run reports that as its failure
            probes["quality"] = None
        else:
            probes["quality"] = PeakProbe(str(device), cfg.train.num_threads, sizes.get(device.type))
    if suite.overhead is not None:
        probes["overhead"] = PeakProbe("cpu", suite.overhead.cpus, sizes.get("cpu"))
    return probes


def peak_metrics(section: str, metrics: dict[str, float], samples: list[float]) -> dict[str, float]:
    """``<section>.matmul_peak_gflops`` (a bench keeps its own) and ``<section>.matmul_peak_spread``."""
    own = metrics.get(f"{section}.{PEAK}")
    every = [*samples, own] if own else list(samples)
    if not every:
        return {}
    out = {f"{section}.{SPREAD}": max(every) / min(every)}
    if own is None:
        out[f"{section}.{PEAK}"] = statistics.median(every)
    return out


def suite_peak(metrics: dict[str, float], sections: list[str]) -> dict[str, float]:
    """The whole night's yardstick (for ``suite.wall_s``): the geometric mean of the sections' peaks, the
    widest spread and the busiest other load of any section."""
    peaks = [metrics.get(f"{s}.{PEAK}") for s in sections]
    if not peaks or not all(peaks):
        return {}
    out = {
        f"suite.{PEAK}": statistics.geometric_mean(peaks),
        f"suite.{SPREAD}": max(metrics.get(f"{s}.{SPREAD}", 1.0) for s in sections),
    }
    others = [metrics[f"{s}.{OTHERS}"] for s in sections if f"{s}.{OTHERS}" in metrics]
    if others:
        out[f"suite.{OTHERS}"] = max(others)
    return out


class OtherLoad:
    """The share of this process's CPUs that other processes kept busy, from construction to :meth:`share`.

    The machine's busy time comes from ``psutil.cpu_times`` (per CPU, only the CPUs in this process's
    affinity where the platform has one), less the CPU time of this process and of its descendants. The
    descendants are polled from a thread (every ``poll_s``): the overhead sweep's Ray workers are not reaped
    by this process, so its children's CPU time would miss most of them (measured: 15 of the 36 CPU seconds
    the sweep's process tree used). A descendant's last ``poll_s`` before it ends is missed all the same.
    """

    def __init__(self, poll_s: float = 0.5) -> None:
        import psutil

        self.cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        self._me = psutil.Process()
        self._first: dict[tuple[int, float], float] = {}  # descendant -> its CPU seconds when first seen
        self._last: dict[tuple[int, float], float] = {}
        self._poll(at_start=True)
        self._start = (time.perf_counter(), *self._busy(), self._own())
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(poll_s,), daemon=True)
        self._thread.start()

    def _busy(self) -> tuple[float, int]:
        """Busy CPU seconds of our CPUs since boot, and how many CPUs that is."""
        import psutil

        per_cpu = psutil.cpu_times(percpu=True)
        chosen = [per_cpu[i] for i in self.cpus if i < len(per_cpu)] if self.cpus else per_cpu
        idle = ("idle", "iowait", "guest", "guest_nice")  # guest time is already counted in user on Linux
        return sum(sum(t) - sum(getattr(t, f, 0.0) for f in idle) for t in chosen), len(chosen)

    def _own(self) -> float:
        times = self._me.cpu_times()
        return times.user + times.system

    def _poll(self, at_start: bool = False) -> None:
        import psutil

        for child in self._me.children(recursive=True):
            try:
                times, key = child.cpu_times(), (child.pid, child.create_time())
            except psutil.Error:  # it ended between the listing and the reading
                continue
            # Alive at the start: only what it uses from now on counts; born later: all of it.
            self._first.setdefault(key, times.user + times.system if at_start else 0.0)
            self._last[key] = times.user + times.system

    def _watch(self, poll_s: float) -> None:
        while not self._done.wait(poll_s):
            self._poll()

    def close(self) -> None:
        """Stops the polling thread (idempotent)."""
        self._done.set()
        self._thread.join()

    def share(self) -> float | None:
        """Others' busy CPU time over the CPUs' wall time since construction (0..1); None if unmeasurable."""
        self.close()
        self._poll()
        wall, (busy, count), own = time.perf_counter(), self._busy(), self._own()
        elapsed = (wall - self._start[0]) * count
        if elapsed <= 0:
            return None
        mine = own - self._start[3] + sum(self._last[k] - self._first[k] for k in self._last)
        # Rounded: the clock ticks are 10 ms, and a float residue of 1e-12 would read as a change from zero.
        return round(min(1.0, max(0.0, (busy - self._start[1] - mine) / elapsed)), 4)
