"""What the nightly suite measures: trainer throughput, a fixed-budget quality run, orchestration overhead.

Each section returns its metrics under its prefix (``bench_cpu.img_per_s``, ``quality.probe_acc``,
``overhead.wall_ratio``). A section that cannot run here (CUDA on a CPU machine) is skipped with a note; one
that crashes is recorded as a failure and the others still run, so one broken part never hides the rest.

The overhead figure runs the same tiny trials twice: through ``python -m orchestrator.sweep FILE --smoke`` in
a subprocess (process start, Ray, Tune, MLflow child runs: what a user pays) and through
``jepa_core.train.train`` called in this process, one after the other. Both sides run trials one at a time
with the same torch thread count, so the ratio is the orchestrator's cost, not a difference in parallelism.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.nightly_suite import (
    BENCH_METRICS,
    QUALITY_METRICS,
    BenchSpec,
    OverheadSpec,
    QualitySpec,
    Suite,
    TrainerSpec,
)
from orchestrator.tracking import one_line

REPO = Path(__file__).resolve().parent.parent
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
    """``cuda:<gpu name>`` where CUDA is available, else ``cpu:<model> x<cores>``.

    Nights compare only within one device kind. The core count is part of a CPU's kind: the same CPU model
    in a 2-core VM and in a 64-core box are different machines to a throughput benchmark.
    """
    import torch

    from jepa_core.bench import cpu_name

    if torch.cuda.is_available():
        kind = f"cuda:{torch.cuda.get_device_name(0)}"
    else:
        kind = f"cpu:{cpu_name()} x{os.cpu_count() or 1}"
    return kind.replace("'", "").replace('"', "")  # it is quoted in MLflow search filters


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
    from orchestrator.spec import load_spec, plan_sweep

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
    for name, measure in sections:
        log(f"{name}: running")
        start = time.perf_counter()
        try:
            metrics = measure()
        except Skipped as exc:
            result.notes.append(f"{name} skipped: {exc}")
            log(f"{name}: skipped ({exc})")
            continue
        except DivergenceError as exc:
            result.failures[name] = f"training diverged: {exc}"
        except Exception as exc:  # noqa: BLE001 - recorded as this section's failure; the others still run
            result.failures[name] = f"{type(exc).__name__}: {one_line(str(exc))}"
        finally:
            result.section_s[name] = time.perf_counter() - start
        if name in result.failures:
            log(f"{name}: FAILED after {result.section_s[name]:.1f} s: {result.failures[name]}")
            continue
        result.metrics.update(metrics)
        shown = ", ".join(f"{k.split('.', 1)[1]} {v:.4g}" for k, v in metrics.items() if _headline(k))
        log(f"{name}: done in {result.section_s[name]:.1f} s: {shown}")
    return result


def _headline(metric: str) -> bool:
    leaf = metric.split(".", 1)[1]
    return leaf in ("img_per_s", "fraction_of_peak", "probe_acc", "rankme", "wall_time_s", "wall_ratio")
