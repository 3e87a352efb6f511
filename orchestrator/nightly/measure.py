"""What the nightly suite measures, section by section: trainer throughput, a fixed-budget quality run, and
the orchestration overhead (orchestrator.nightly.overhead).

Each section returns its metrics under its prefix (``bench_cpu.img_per_s``, ``quality.probe_acc``,
``overhead.wall_ratio``), measured between matmul-peak samples and beside a reading of the other processes'
CPU load (orchestrator.nightly.yardstick). A section that cannot run here (CUDA on a CPU machine) is skipped
with a note; one that crashes is recorded as a failure and the others still run, so one broken part never
hides the rest.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.nightly.metrics import BENCH_METRICS, OTHERS, PEAK, QUALITY_METRICS, SPREAD
from orchestrator.nightly.overhead import measure_overhead
from orchestrator.nightly.suite import BenchSpec, QualitySpec, Suite, TrainerSpec
from orchestrator.nightly.yardstick import (
    OtherLoad,
    PeakProbe,
    TorchThreads,
    peak_metrics,
    sample_peak,
    section_probes,
    suite_peak,
)
from orchestrator.tracking.runs import one_line

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


def device_kind(with_capability: bool = True) -> str:
    """The machine kind nights compare within (:func:`jepa_core.machine.device_kind`)."""
    from jepa_core.machine import device_kind as kind

    return kind(with_capability)


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
    with TorchThreads():
        if cfg.train.num_threads > 0:
            torch.set_num_threads(cfg.train.num_threads)
        result = run_bench(cfg, torch.device(spec.device), spec.steps, spec.warmup, spec.peak_size)
    return {f"bench_{spec.device}.{k}": float(result[k]) for k in BENCH_METRICS if k in result}


def measure_quality(spec: QualitySpec, work: Path) -> dict[str, float]:
    """Trains once per seed with the fixed budget; each metric is the mean over seeds."""
    from jepa_core.train import train

    runs = []
    with TorchThreads():
        for seed in spec.seeds:
            cfg = spec.trainer.config({"train.seed": seed})
            runs.append(train(cfg, work / f"quality_seed{seed}", progress=False))
    return {
        f"quality.{m}": statistics.fmean(float(r[m]) for r in runs)
        for m in QUALITY_METRICS
        if all(isinstance(r.get(m), (int, float)) for r in runs)
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
        "startup_s",
        PEAK,
        SPREAD,
        OTHERS,
    )
    return leaf in headline
