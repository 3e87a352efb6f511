"""What the nightly suite measures: trainer throughput, a fixed-budget quality run, orchestration overhead.

Each section returns its metrics under its prefix (``bench_cpu.img_per_s``, ``quality.probe_acc``,
``overhead.wall_ratio``). A section that cannot run here (CUDA on a CPU machine) is skipped with a note; one
that crashes is recorded as a failure and the others still run, so one broken part never hides the rest.

The overhead figure runs the same tiny trials twice: through ``python -m orchestrator.sweep FILE --smoke`` in
a subprocess (process start, Ray, Tune, MLflow child runs: what a user pays) and through
``jepa_core.train.train`` called in this process, one after the other. Both sides run trials one at a time
with the same torch thread count, so the ratio is the orchestrator's cost, not a difference in parallelism.

Around every section the matmul peak of the section's device is sampled with the section's thread count
(before and after it; a bench section also measures its own): ``<section>.matmul_peak_gflops`` (the median
of the samples; a bench keeps its own) and ``<section>.matmul_peak_spread`` (max / min of them). Beside it,
``<section>.other_cpu_share``: the share of the CPUs this process may run on that other processes kept busy
during the section (the machine's busy CPU time, psutil, less this process's and its children's). The verdict
normalises the section's timings by the peak and trusts that only while the machine stayed near the
baseline's (orchestrator.nightly.verdict).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.nightly.suite import (
    BENCH_METRICS,
    QUALITY_METRICS,
    BenchSpec,
    OverheadSpec,
    QualitySpec,
    Suite,
    TrainerSpec,
)
from orchestrator.nightly.verdict import OTHERS, PEAK, SPREAD
from orchestrator.tracking.runs import one_line

REPO = Path(__file__).resolve().parents[2]
Log = Callable[[str], None]


class Skipped(Exception):  # noqa: N818 - a section that does not apply here is not an error
    """A section that cannot run on this machine (e.g. CUDA without a GPU); the message says why."""


@dataclass
class NightResult:
    """Everything one night measured, and what it could not."""

    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # skipped sections, with the reason
    failures: dict[str, str] = field(default_factory=dict)  # section -> one-line error
    section_s: dict[str, float] = field(default_factory=dict)  # wall seconds per section


def device_kind() -> str:
    """The machine kind nights compare within (:func:`jepa_core.machine.device_kind`)."""
    from jepa_core.machine import device_kind as kind

    return kind()


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
    with _Threads():
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


class _Threads:
    """Restores torch's thread count: the trainer and the bench set it for the whole process."""

    def __enter__(self) -> None:
        import torch

        self.saved = torch.get_num_threads()

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.set_num_threads(self.saved)


def check_data(suite: Suite) -> None:
    """Loads each training dataset the suite needs once, so a missing dataset is invalid input up front.

    Raises:
        jepa_core.data.DataError: naming the dataset and the ways to provide it.
    """
    from jepa_core import data as jdata

    specs: list[TrainerSpec] = [s.trainer for s in (suite.quality, suite.overhead) if s is not None]
    for trainer in specs:
        d = trainer.config().data
        if d.name in jdata.DATASET_NAMES:  # image folders are streamed; the trainer checks those itself
            jdata.load_tensor_dataset(d.name, "train", d.root)  # cached: the runs reuse it


def measure_bench(spec: BenchSpec) -> dict[str, float]:
    """Median img/s, FLOPs and fraction of the matmul peak of the training step on ``spec.device``."""
    import torch

    from jepa_core.bench import run_bench

    if spec.device == "cuda" and not torch.cuda.is_available():
        raise Skipped("no CUDA device on this machine")
    cfg = spec.trainer.config()
    with _Threads():
        if cfg.train.num_threads > 0:
            torch.set_num_threads(cfg.train.num_threads)
        result = run_bench(cfg, torch.device(spec.device), spec.steps, spec.warmup, spec.peak_size)
    return {f"bench_{spec.device}.{k}": float(result[k]) for k in BENCH_METRICS if k in result}


def measure_quality(spec: QualitySpec, work: Path) -> dict[str, float]:
    """Trains once per seed with the fixed budget; each metric is the mean over seeds."""
    from jepa_core.train import train

    runs = []
    with _Threads():
        for seed in spec.seeds:
            cfg = spec.trainer.config({"train.seed": seed})
            runs.append(train(cfg, work / f"quality_seed{seed}", progress=False))
    return {
        f"quality.{m}": statistics.fmean(float(r[m]) for r in runs)
        for m in QUALITY_METRICS
        if all(isinstance(r.get(m), (int, float)) for r in runs)
    }


def overhead_sweep_text(spec: OverheadSpec, name: str) -> str:
    """A one-configuration grid sweep over ``spec.seeds`` whose ``--smoke`` changes nothing in the trials.

    ``--smoke`` is how the sweep CLI is exercised in CI; here it only pins the resources and runs the trials
    one at a time (as the in-process side does).
    """
    body = {
        "name": name,
        "description": "Orchestration overhead probe written by python -m orchestrator.nightly.",
        "method": "grid",
        "metric": {"name": "probe_acc", "goal": "maximize"},
        "parameters": {},
        "seeds": list(spec.seeds),
        "max_failures": 0,
        "trainer": {"preset": spec.trainer.preset, "overrides": dict(spec.trainer.overrides)},
        "smoke": {
            "overrides": {},
            "resources": {"cpu": spec.cpus, "gpu": 0},
            "max_concurrent_trials": 1,
        },
    }
    if spec.trainer.preset is None:
        del body["trainer"]["preset"]
    return yaml.safe_dump(body, sort_keys=False)


def _run_sweep(cmd: list[str], env: dict[str, str], log_path: Path, timeout: float) -> int:
    """Runs the sweep CLI in its own process group (so a timeout ends Ray's processes it started too)."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(timeout=15)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
            raise RuntimeError(
                f"the sweep ran past overhead.timeout_s={timeout:g} s (log: {log_path})"
            ) from None


def _failure_line(log_path: Path) -> str:
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "FAILED", "Traceback")) or "Error" in ln]
    return one_line((errors or lines or ["no output"])[-1])


def measure_overhead(
    spec: OverheadSpec, work: Path, logs: Path, tracking_uri: str, experiment: str, log: Log
) -> dict[str, float]:
    """Wall time of the tiny trials through the sweep CLI over the same trials trained in-process."""
    from jepa_core.train import train
    from orchestrator.sweep.spec import load_spec, plan_sweep

    sweep_file = work / "overhead_sweep.yaml"
    sweep_file.write_text(overhead_sweep_text(spec, f"{experiment}-overhead"))
    plan = plan_sweep(load_spec(sweep_file), smoke=True)
    # The sweep's trainable adds exactly these two keys to every trial config.
    extra = {"train.num_threads": spec.cpus, "train.progress": False}

    start = time.perf_counter()
    with _Threads():
        for trial in plan.trials:
            train(plan.trial_config(trial.params, trial.seed, extra), work / f"direct_{trial.index}")
    direct = time.perf_counter() - start
    log(f"overhead: {len(plan.trials)} trials in-process in {direct:.1f} s; now through the sweep CLI")

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    log_path = logs / "overhead_sweep.log"
    cmd = [sys.executable, "-m", "orchestrator.sweep", str(sweep_file), "--smoke"]
    storage = spec.storage_path or str(work / "ray_results")
    cmd += ["--tracking-uri", tracking_uri, "--storage-path", storage, "--no-report"]
    start = time.perf_counter()
    code = _run_sweep(cmd, env, log_path, spec.timeout_s)
    sweep = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"the sweep exited {code}: {_failure_line(log_path)} (log: {log_path})")
    return {
        "overhead.sweep_wall_s": sweep,
        "overhead.direct_wall_s": direct,
        "overhead.wall_ratio": sweep / direct,
        "overhead.extra_s": sweep - direct,
    }


def run_suite(suite: Suite, work: Path, logs: Path, tracking_uri: str, log: Log) -> NightResult:
    """Runs every enabled section in order: benches, quality, overhead (the one that needs Ray, last)."""
    from jepa_core.train import DivergenceError

    sections: list[tuple[str, Callable[[], dict[str, float]]]] = [
        (f"bench_{b.device}", lambda b=b: measure_bench(b)) for b in suite.bench
    ]
    if suite.quality is not None:
        quality = suite.quality
        sections.append(("quality", lambda: measure_quality(quality, work)))
    if suite.overhead is not None:
        overhead = suite.overhead
        sections.append(
            ("overhead", lambda: measure_overhead(overhead, work, logs, tracking_uri, suite.experiment, log))
        )
    result = NightResult()
    probes = section_probes(suite)
    last: tuple[PeakProbe, float] | None = None  # the latest sample, taken where the previous section ended
    measured = []
    for name, measure in sections:
        log(f"{name}: running")
        start = time.perf_counter()
        probe = probes.get(name)
        load = OtherLoad()
        try:
            samples = []
            if probe is not None:
                # Back to back with the previous section's closing sample, that one serves as the opening one.
                samples.append(last[1] if last is not None and last[0] == probe else sample_peak(probe))
            metrics = measure()
            if probe is not None:
                samples.append(sample_peak(probe))
                last = (probe, samples[-1])
            metrics.update(peak_metrics(name, metrics, samples))
            others = load.share()
            if others is not None:
                metrics[f"{name}.{OTHERS}"] = others
        except Skipped as exc:
            result.notes.append(f"{name} skipped: {exc}")
            log(f"{name}: skipped ({exc})")
            continue
        except DivergenceError as exc:
            result.failures[name] = f"training diverged: {exc}"
        except Exception as exc:  # noqa: BLE001 - recorded as this section's failure; the others still run
            result.failures[name] = f"{type(exc).__name__}: {one_line(str(exc))}"
        finally:
            load.close()  # a section that raised leaves no thread behind
            result.section_s[name] = time.perf_counter() - start
        if name in result.failures:
            log(f"{name}: FAILED after {result.section_s[name]:.1f} s: {result.failures[name]}")
            last = None
            continue
        result.metrics.update(metrics)
        measured.append(name)
        shown = ", ".join(f"{k.split('.', 1)[1]} {v:.4g}" for k, v in metrics.items() if _headline(k))
        log(f"{name}: done in {result.section_s[name]:.1f} s: {shown}")
    if not result.failures:  # one missing section would make tonight's mean unlike the baseline's
        result.metrics.update(suite_peak(result.metrics, measured))
    return result


def _headline(metric: str) -> bool:
    leaf = metric.split(".", 1)[1]
    headline = (
        "img_per_s",
        "fraction_of_peak",
        "probe_acc",
        "rankme",
        "wall_time_s",
        "wall_ratio",
        PEAK,
        SPREAD,
        OTHERS,
    )
    return leaf in headline
