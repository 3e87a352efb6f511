"""The nightly suite file (``sweeps/nightly.yaml``): schema, validation and the ``--smoke`` merge.

The file is validated whole, trainer configs included, before anything runs: every mistake raises
:class:`SuiteError`, whose message is one line naming the file and the offending key, so the CLI exits 2
without a traceback instead of failing an hour into the night.

    experiment: nightly
    baseline: {window: 7}          # rolling median of the last 7 successful comparable nights
    trend_nights: 30
    bench:                         # trainer step throughput (jepa_core.bench.run_bench), per device
      cpu:  {preset: fmnist_cpu, overrides: {...}, steps: 10, warmup: 3}
      cuda: {preset: reference_112, steps: 30, warmup: 10}   # runs only where CUDA is available
    quality: {preset: fmnist_gpu, overrides: {...}, seeds: [0, 1]}
    overhead: {enabled: true, overrides: {...}, seeds: [0, 1], cpus: 1, timeout_s: 600}
    tolerances:
      bench_cpu.img_per_s: {rel: 0.15, direction: higher}
      quality.probe_acc: {abs: 0.02, direction: higher}
    smoke:                         # merged over the sections above under --smoke
      quality: {overrides: {train.epochs: 1}, seeds: [0]}
      tolerances: {...}

Imports neither torch, MLflow nor Ray: a bad file must fail in a second.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepa_core.config import PRESETS, Config, ConfigError, build_config, flatten, read_yaml
from orchestrator.nightly.verdict import DIRECTIONS, KINDS, OTHERS, PEAK, SPREAD, Tolerance
from orchestrator.sweep.spec import check_mapping, suggest

TOP_KEYS = ("experiment", "description", "baseline", "trend_nights", "bench", "quality", "overhead")
TOP_KEYS += ("tolerances", "smoke")
SMOKE_KEYS = ("bench", "quality", "overhead", "tolerances")
DEVICES = ("cpu", "cuda")
BENCH_KEYS = ("enabled", "preset", "overrides", "steps", "warmup", "peak_size")
QUALITY_KEYS = ("enabled", "preset", "overrides", "seeds")
OVERHEAD_KEYS = ("enabled", "preset", "overrides", "seeds", "cpus", "timeout_s", "storage_path")
# Not part of what is measured: changing them keeps the baseline.
UNMEASURED = ("trainer", "timeout_s", "storage_path")

# What each section measures, under its prefix (``bench_cpu.img_per_s``, ``quality.probe_acc``, ...).
BENCH_METRICS = (
    "img_per_s",
    "step_s_median",
    "flops_per_img",
    "achieved_gflops",
    "matmul_peak_gflops",
    "fraction_of_peak",
    "context_patches_mean",
    "target_patches_mean",
    "host_syncs_per_step",
)
QUALITY_METRICS = (
    *("probe_acc", "knn_acc", "test_probe_acc", "test_knn_acc"),
    *("rankme", "feature_std", "train_loss", "wall_time_s", "img_per_s"),
)
OVERHEAD_METRICS = ("wall_ratio", "sweep_wall_s", "direct_wall_s", "extra_s")
# The yardstick of the timing metrics, measured around every section (orchestrator.nightly.measure): its
# matmul peak (bench sections already report theirs), how far the samples spread (max / min), and the share
# of the CPUs other processes kept busy meanwhile.
SECTIONS = (*(f"bench_{d}" for d in DEVICES), "quality", "overhead", "suite")
PEAK_METRICS = (
    *(f"{s}.{PEAK}" for s in SECTIONS if not s.startswith("bench_")),
    *(f"{s}.{m}" for s in SECTIONS for m in (SPREAD, OTHERS)),
)
KNOWN_METRICS = (
    *(f"bench_{d}.{m}" for d in DEVICES for m in BENCH_METRICS),
    *(f"quality.{m}" for m in QUALITY_METRICS),
    *(f"overhead.{m}" for m in OVERHEAD_METRICS),
    "suite.wall_s",
    *PEAK_METRICS,
)
_CONFIG_KEYS = frozenset(Config().to_flat())


class SuiteError(ValueError):
    """An invalid suite file; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class TrainerSpec:
    """A trainer config as a preset plus dotted overrides (the sweep files' ``trainer`` shape)."""

    preset: str | None
    overrides: dict[str, Any]

    def config(self, extra: dict[str, Any] | None = None) -> Config:
        """The resolved, validated config (``extra`` applied last). Raises ConfigError."""
        return build_config(self.preset, overrides=[self.overrides, dict(extra or {})])


@dataclass(frozen=True)
class BenchSpec:
    device: str  # cpu | cuda
    trainer: TrainerSpec
    steps: int
    warmup: int
    peak_size: int | None


@dataclass(frozen=True)
class QualitySpec:
    trainer: TrainerSpec
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class OverheadSpec:
    trainer: TrainerSpec
    seeds: tuple[int, ...]
    cpus: int  # per trial, in the sweep and in the direct runs alike (torch threads)
    timeout_s: float
    storage_path: str | None  # Tune's storage; None: a fresh temporary folder (one machine only)


@dataclass(frozen=True)
class Suite:
    """A validated suite, with ``--smoke`` already applied when ``smoke`` is true."""

    path: Path
    smoke: bool
    experiment: str
    window: int
    trend_nights: int
    bench: tuple[BenchSpec, ...]
    quality: QualitySpec | None
    overhead: OverheadSpec | None
    tolerances: dict[str, Tolerance]
    settings: dict[str, Any] = field(repr=False)  # the effective measured sections, as plain data

    @property
    def fingerprint(self) -> str:
        """A short hash of what is measured (not of tolerances or comments): nights compare only within it."""
        blob = json.dumps(self.settings, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _err(path: Path, key: str, problem: str) -> SuiteError:
    return SuiteError(f"{path}: key '{key}': {problem}")


def _mapping(path: Path, key: str, value: Any, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A missing section is empty; otherwise the sweep files' mapping check, raising SuiteError."""
    return {} if value is None else check_mapping(path, key, value, allowed, SuiteError)


def _int(path: Path, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _err(path, key, f"expected an integer, got {value!r}")
    if value < minimum:
        raise _err(path, key, f"must be >= {minimum}, got {value}")
    return value


def _positive(path: Path, key: str, value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise _err(path, key, f"expected a positive number, got {value!r}")
    return float(value)


def _bool(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _err(path, key, f"expected true or false, got {value!r}")
    return value


def _seeds(path: Path, key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise _err(path, key, f"expected a non-empty list of integers, got {value!r}")
    seeds = tuple(_int(path, key, s, 0) for s in value)
    if len(set(seeds)) != len(seeds):
        raise _err(path, key, "repeats a seed")
    return seeds


def _trainer(path: Path, key: str, body: dict[str, Any], extra: dict[str, Any] | None = None) -> TrainerSpec:
    """The section's preset and overrides, checked by building the trainer config they describe."""
    preset = body.get("preset")
    if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
        raise _err(path, f"{key}.preset", f"unknown preset {preset!r}{suggest(str(preset), PRESETS)}")
    try:
        overrides = flatten(_mapping(path, f"{key}.overrides", body.get("overrides")))
    except ConfigError as exc:
        raise _err(path, f"{key}.overrides", str(exc)) from None
    for k in overrides:
        if k not in _CONFIG_KEYS:
            raise _err(path, f"{key}.overrides.{k}", f"unknown trainer config key{suggest(k, _CONFIG_KEYS)}")
    spec = TrainerSpec(preset, {**overrides, **(extra or {})})
    try:
        spec.config()
    except ConfigError as exc:
        found = re.search(r"config key '([^']+)'", str(exc))
        named = found.group(1) if found else None
        where = f"{key}.overrides.{named}" if named in overrides else f"{key}.preset"
        raise _err(path, where, str(exc)) from None
    return spec


def _enabled(path: Path, key: str, body: dict[str, Any]) -> bool:
    return _bool(path, f"{key}.enabled", body.get("enabled", True))


def _bench(path: Path, key: str, raw: Any) -> tuple[BenchSpec, ...]:
    section = _mapping(path, key, raw, ("enabled", *DEVICES))
    if not _enabled(path, key, section):
        return ()
    out = []
    for device in DEVICES:
        where = f"{key}.{device}"
        if device not in section:
            continue
        body = _mapping(path, where, section[device], BENCH_KEYS)
        if not _enabled(path, where, body):
            continue
        peak = body.get("peak_size")
        out.append(
            BenchSpec(
                device=device,
                trainer=_trainer(path, where, body, {"train.device": device}),
                steps=_int(path, f"{where}.steps", body.get("steps", 10), 1),
                warmup=_int(path, f"{where}.warmup", body.get("warmup", 3), 0),
                peak_size=None if peak is None else _int(path, f"{where}.peak_size", peak, 64),
            )
        )
    return tuple(out)


def _quality(path: Path, key: str, raw: Any) -> QualitySpec | None:
    body = _mapping(path, key, raw, QUALITY_KEYS)
    if not body or not _enabled(path, key, body):
        return None
    seeds = _seeds(path, f"{key}.seeds", body.get("seeds", [0]))
    trainer = _trainer(path, key, body, {"train.progress": False})
    if "train.seed" in trainer.overrides:
        raise _err(path, f"{key}.overrides.train.seed", "seeds are set with the section's 'seeds' list")
    return QualitySpec(trainer, seeds)


def _overhead(path: Path, key: str, raw: Any) -> OverheadSpec | None:
    body = _mapping(path, key, raw, OVERHEAD_KEYS)
    if not body or not _enabled(path, key, body):
        return None
    seeds = _seeds(path, f"{key}.seeds", body.get("seeds", [0, 1]))
    cpus = _int(path, f"{key}.cpus", body.get("cpus", 1), 1)
    # The trials run on the CPU with the sweep's own thread rule (threads = the trial's CPUs): the figure is
    # the orchestrator's cost, which a GPU would only blur with device start-up.
    trainer = _trainer(path, key, body, {"train.device": "cpu", "train.num_threads": cpus})
    if "train.seed" in trainer.overrides:
        raise _err(path, f"{key}.overrides.train.seed", "seeds are set with the section's 'seeds' list")
    timeout = _positive(path, f"{key}.timeout_s", body.get("timeout_s", 600))
    storage = body.get("storage_path")
    if storage is not None and (not isinstance(storage, str) or not storage.strip()):
        raise _err(
            path, f"{key}.storage_path", f"expected a folder or URI every Ray node reaches, got {storage!r}"
        )
    return OverheadSpec(trainer, seeds, cpus, timeout, storage)


def _tolerances(path: Path, key: str, raw: Any) -> dict[str, Tolerance]:
    out = {}
    for metric, spec in _mapping(path, key, raw).items():
        where = f"{key}.{metric}"
        if metric not in KNOWN_METRICS:
            raise _err(path, where, f"unknown metric{suggest(metric, KNOWN_METRICS)}")
        body = _mapping(path, where, spec, (*KINDS, "direction"))
        kinds = [k for k in KINDS if k in body]
        if len(kinds) != 1:
            raise _err(path, where, "give exactly one of 'rel' (fraction of the baseline) or 'abs' (units)")
        amount = body[kinds[0]]
        ok = isinstance(amount, (int, float)) and not isinstance(amount, bool)
        if not ok or not math.isfinite(amount) or amount < 0:
            raise _err(path, f"{where}.{kinds[0]}", f"expected a number >= 0, got {amount!r}")
        direction = body.get("direction")
        if direction not in DIRECTIONS:
            raise _err(
                path, f"{where}.direction", f"must be higher or lower (which is better), got {direction!r}"
            )
        out[metric] = Tolerance(kinds[0], float(amount), direction)
    return out


def _merge(base: Any, over: Any, key: str = "") -> Any:
    """``over`` merged into ``base``: mappings key by key, trainer overrides by dotted key, the rest replaced.

    A tolerance is replaced whole: merging ``{abs: ..}`` into ``{rel: ..}`` would make it ambiguous.
    """
    if not isinstance(base, dict) or not isinstance(over, dict):
        return copy.deepcopy(over)
    if key.endswith("overrides"):
        try:
            return {**flatten(base), **flatten(over)}
        except ConfigError:
            return copy.deepcopy(over)  # reported by the validation of the merged section
    if key == "tolerances":
        return {**base, **copy.deepcopy(over)}
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k), v, k) if k in base else copy.deepcopy(v)
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        data, _ = read_yaml(path, "suite file")
    except ConfigError as exc:
        raise SuiteError(str(exc)) from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite file is a mapping (bench, quality, overhead, tolerances, smoke)")
    return data


def _sections(path: Path, data: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Validates the measured sections of ``data``; ``prefix`` names where a bad value came from."""
    return {
        "bench": _bench(path, f"{prefix}bench", data.get("bench")),
        "quality": _quality(path, f"{prefix}quality", data.get("quality")),
        "overhead": _overhead(path, f"{prefix}overhead", data.get("overhead")),
        "tolerances": _tolerances(path, f"{prefix}tolerances", data.get("tolerances")),
    }


def _settings(sections: dict[str, Any]) -> dict[str, Any]:
    """The measured sections as plain data (for the fingerprint and the MLflow artifact)."""

    def plain(spec: Any) -> Any:
        if spec is None:
            return None
        out = {k: v for k, v in vars(spec).items() if k not in UNMEASURED}
        return {
            **out,
            "preset": spec.trainer.preset,
            "overrides": dict(sorted(spec.trainer.overrides.items())),
        }

    return {
        "bench": [plain(b) for b in sections["bench"]],
        "quality": plain(sections["quality"]),
        "overhead": plain(sections["overhead"]),
    }


def load_suite(path: str | Path, smoke: bool = False) -> Suite:
    """Reads and validates a suite file; with ``smoke``, its ``smoke`` section is merged over the rest.

    Both the full and the smoke suite are validated either way: the nightly GPU run must not be the first to
    find a typo in the smoke section, nor CI's smoke run one in the full suite.

    Raises:
        SuiteError: naming the file and the first offending key.
    """
    path = Path(path)
    data = _read(path)
    _mapping(path, "", data, TOP_KEYS)
    experiment = data.get("experiment", "nightly")
    if not isinstance(experiment, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", experiment):
        # It also names the overhead sweep (<experiment>-overhead), which names folders.
        raise _err(path, "experiment", f"use letters, digits, '-', '_' or '.', got {experiment!r}")
    baseline = _mapping(path, "baseline", data.get("baseline"), ("window",))
    window = _int(path, "baseline.window", baseline.get("window", 7), 1)
    trend = _int(path, "trend_nights", data.get("trend_nights", 30), 2)
    full = _sections(path, data, "")
    smoke_raw = _mapping(path, "smoke", data.get("smoke"), SMOKE_KEYS)
    merged = {k: _merge(data.get(k), smoke_raw[k], k) if k in data else smoke_raw[k] for k in smoke_raw}
    small = _sections(path, {**data, **merged}, "smoke.")
    chosen = small if smoke else full
    if not chosen["bench"] and chosen["quality"] is None and chosen["overhead"] is None:
        raise _err(path, "smoke" if smoke else "bench", "every section is disabled: nothing to measure")
    return Suite(
        path=path,
        smoke=smoke,
        experiment=experiment,
        window=window,
        trend_nights=trend,
        bench=chosen["bench"],
        quality=chosen["quality"],
        overhead=chosen["overhead"],
        tolerances=chosen["tolerances"],
        settings=_settings(chosen),
    )
