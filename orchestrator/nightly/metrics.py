"""The metrics a night records: their names, their units, and how timing metrics follow the machine's speed.

Every metric is ``<section>.<name>``: ``bench_cpu.img_per_s``, ``quality.probe_acc``, ``overhead.wall_ratio``,
``suite.wall_s``. Beside each section's own metrics the night records the yardstick it was measured against
(orchestrator.nightly.yardstick): ``<section>.matmul_peak_gflops`` (the matmul peak measured around it the
same night), ``<section>.matmul_peak_spread`` (max / min of those samples) and ``<section>.other_cpu_share``
(the share of the CPUs other processes kept busy meanwhile).

Pure names and arithmetic: nothing here imports torch, MLflow or Ray.
"""

from __future__ import annotations

DEVICES = ("cpu", "cuda")  # the bench sections, bench_cpu and bench_cuda

# The yardstick of timing metrics, per section. bench_<device>.matmul_peak_gflops predates the others.
PEAK, SPREAD, OTHERS = "matmul_peak_gflops", "matmul_peak_spread", "other_cpu_share"

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
OVERHEAD_METRICS = ("wall_ratio", "sweep_wall_s", "direct_wall_s", "extra_s", "startup_s", "winddown_s")
SECTIONS = (*(f"bench_{d}" for d in DEVICES), "quality", "overhead", "suite")
# Bench sections report their own peak (BENCH_METRICS); every section gets the spread and the other load.
PEAK_METRICS = (
    *(f"{s}.{PEAK}" for s in SECTIONS if not s.startswith("bench_")),
    *(f"{s}.{m}" for s in SECTIONS for m in (SPREAD, OTHERS)),
)
# The names a tolerance may be given for.
KNOWN_METRICS = (
    *(f"bench_{d}.{m}" for d in DEVICES for m in BENCH_METRICS),
    *(f"quality.{m}" for m in QUALITY_METRICS),
    *(f"overhead.{m}" for m in OVERHEAD_METRICS),
    "suite.wall_s",
    *PEAK_METRICS,
)

_UNITS = {
    "img_per_s": "img/s",
    "step_s_median": "s",
    "matmul_peak_spread": "x",
    "other_cpu_share": "fraction",
    "achieved_gflops": "GFLOP/s",
    "matmul_peak_gflops": "GFLOP/s",
    "flops_per_img": "FLOP/img",
    "fraction_of_peak": "fraction",
    "probe_acc": "fraction",
    "knn_acc": "fraction",
    "rankme": "eff. rank",
    "wall_ratio": "x",
    "context_patches_mean": "patches",
    "target_patches_mean": "patches",
    "host_syncs_per_step": "syncs/step",
}


def unit_of(metric: str) -> str:
    """The unit a metric is shown in (every number a user sees has one); "" for a plain number."""
    leaf = metric.rsplit(".", 1)[-1]
    if leaf in _UNITS:
        return _UNITS[leaf]
    return "s" if leaf.endswith("_s") else ""


def scaling(metric: str) -> int:
    """How a metric follows the machine's speed: +1 throughput (img/s, GFLOP/s), -1 durations (s), 0 neither.

    The peak itself, fractions of it and ratios of two timings (``overhead.wall_ratio``) are already free of
    the machine's speed, and quality metrics never depended on it.
    """
    if metric.rsplit(".", 1)[-1] == PEAK:
        return 0
    unit = unit_of(metric)
    return 1 if unit in ("img/s", "GFLOP/s") else -1 if unit == "s" else 0


def section_of(metric: str) -> str:
    """``quality.wall_time_s`` -> ``quality``."""
    return metric.split(".", 1)[0]


def peak_of(metric: str) -> str:
    """The peak that normalises ``metric``: its own section's (``quality.x`` -> ``quality.<PEAK>``)."""
    return f"{section_of(metric)}.{PEAK}"


def normalise(value: float, scale: int, peak_now: float, peak_base: float) -> float:
    """``value`` measured at ``peak_now`` as it would read at ``peak_base`` (proportional scaling).

    ``scale`` is :func:`scaling`'s: seconds x peak tonight / peak baseline, throughput x peak baseline / peak
    tonight.
    """
    return value * (peak_base / peak_now) ** scale
