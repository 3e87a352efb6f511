"""Tidy pandas frames and statistics for sweep reports.

Everything here is a pure function of what MLflow gives back, so it can be tested on hand-built frames and a
report can be rebuilt from MLflow alone:

* ``runs``: the frame of ``mlflow.search_runs`` (``run_id``, ``status``, ``start_time``, ``end_time``,
  ``params.*`` as strings, ``metrics.*`` holding each metric's last value, ``tags.*``) with the sweep's parent
  run and its trial runs;
* ``history``: a long frame of metric histories with columns ``run_id``, ``key``, ``step``, ``value``.

Statistics are taken over the *ranked* trials only (column ``ranked`` of :func:`trials_frame`): trials that
ran to their last epoch, on one metrics version. Trials the scheduler stopped early reached an earlier epoch
and failed trials have no final figure; both are counted against their configuration (``seeds``) and listed
apart, never pooled. Intervals are 95% confidence intervals of the mean over seeds with the t distribution;
which configuration is best, and which others it beats, comes from
:func:`orchestrator.report.stats.compare_with_best` (seed-blocked two-way ANOVA with Tukey's studentized
range), for the leaderboard and for every parameter's levels alike.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.report import stats as rs

SEED_KEYS = ("train.seed",)  # never a swept parameter: seeds are what the intervals are taken over
ALPHA = rs.ALPHA
VALIDATION_METRICS_VERSION = 2  # jepa.metrics_version from which probe_acc/knn_acc are validation figures
LEGACY_SPLIT_NOTE = "probe_acc/knn_acc measured on the test split (logged before validation splits)"
MIN_IMPORTANCE_CONFIGS = 10  # fANOVA over fewer configurations fits noise
IMPORTANCE_RESAMPLES = 20
IMPORTANCE_TREES = 8  # per bootstrap fit (Optuna's default is 64): 20 fits cost about 2.5 full ones
POWER, MAX_POWER_SEEDS = 0.8, 1000


@dataclass(frozen=True)
class MetricSpec:
    """How one per-trial number is shown: name, unit, display scale and decimals."""

    key: str
    name: str
    unit: str = ""
    scale: float = 1.0
    decimals: int = 3

    @property
    def label(self) -> str:
        """Column header with the unit, e.g. ``probe acc (%)``."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


# The per-parameter tables show these (when present); accuracies are stored as fractions, shown in percent.
METRIC_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("probe_acc", "probe acc", "%", 100.0, 2),
    MetricSpec("test_probe_acc", "test probe acc", "%", 100.0, 2),
    MetricSpec("knn_acc", "kNN acc", "%", 100.0, 2),
    MetricSpec("test_knn_acc", "test kNN acc", "%", 100.0, 2),
    MetricSpec("rankme", "RankMe", "", 1.0, 1),
    MetricSpec("train_loss", "final loss", "", 1.0, 4),
    MetricSpec("img_per_s", "throughput, last epoch", "img/s", 1.0, 0),
    MetricSpec("duration_s", "wall time", "s", 1.0, 1),
)


@dataclass(frozen=True)
class SweepInfo:
    """What the parent run says about the sweep."""

    name: str
    parent_run_id: str
    swept_params: tuple[str, ...]
    metric: str
    goal: str  # "maximize" | "minimize"
    git_sha: str | None
    host: str | None
    device: str | None
    status: str | None
    start_time: pd.Timestamp | None
    end_time: pd.Timestamp | None


@dataclass(frozen=True)
class Comparison:
    """The best group against every other on one metric, and the report's sentence about it."""

    result: rs.BestComparison
    sentence: str

    @property
    def best(self) -> str:
        return self.result.best

    @property
    def runner_up(self) -> str | None:
        return self.result.runner_up

    @property
    def distinguishable(self) -> bool:
        """The best is distinguishable from every other compared group."""
        others = self.result.others
        return bool(others) and len(self.result.distinguishable_from) == len(others)


@dataclass(frozen=True)
class Importance:
    """Parameter importances (each fit normalized to sum 1): the mean over bootstrap resamples of the
    trials, with the 5th and 95th percentiles of those resamples, and how they were obtained."""

    values: dict[str, float]
    method: str
    note: str | None = None
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    resamples: int = 0


# --------------------------------------------------------------------------------------------- casting
_INT_RE = re.compile(r"[+-]?\d+")


def cast_param_value(raw: Any) -> Any:
    """Casts one MLflow param string back to None, bool, int, float or (otherwise) str."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text in ("None", "null", ""):
        return None
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if _INT_RE.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return raw


def cast_param_column(column: pd.Series) -> pd.Series:
    """Casts a column of param strings; all-int and all-float columns get numeric dtypes for sorting/plots."""
    # A list, not Series.map: map would turn [None, 3000] into [nan, 3000.0].
    values = pd.Series([cast_param_value(v) for v in column], index=column.index, dtype=object)
    present = [v for v in values if v is not None]
    numeric = present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if numeric and len(present) == len(values):
        if all(isinstance(v, int) for v in present):
            return values.astype("int64")
        return values.astype("float64")
    return values.astype(object)


def cast_params(runs: pd.DataFrame) -> pd.DataFrame:
    """The ``params.*`` columns of a search_runs frame, cast, named by their dotted key."""
    columns = [c for c in runs.columns if c.startswith("params.")]
    out = pd.DataFrame({c[len("params.") :]: cast_param_column(runs[c]) for c in columns}, index=runs.index)
    return out


def to_utc(column: pd.Series) -> pd.Series:
    """Timestamps from search_runs (datetime64) or raw epoch milliseconds, as UTC."""
    if pd.api.types.is_numeric_dtype(column):
        return pd.to_datetime(column, unit="ms", utc=True)
    return pd.to_datetime(column, utc=True)


def _tag(row: pd.Series, key: str) -> str | None:
    value = row.get(f"tags.{key}")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


# --------------------------------------------------------------------------------------------- tidy frames
def select_parent(runs: pd.DataFrame, parent_run_id: str | None = None) -> pd.Series:
    """The parent run's row: the given id, else the latest run tagged ``jepa.role=sweep``."""
    if parent_run_id is not None:
        rows = runs[runs["run_id"] == parent_run_id]
        if rows.empty:
            raise ValueError(f"run {parent_run_id} is not among the runs")
        return rows.iloc[0]
    role = runs.get("tags.jepa.role")
    parents = runs[role == "sweep"] if role is not None else runs.iloc[0:0]
    if parents.empty:
        raise ValueError("no run tagged jepa.role=sweep")
    return parents.loc[to_utc(parents["start_time"]).idxmax()]


def sweep_info(runs: pd.DataFrame, parent_run_id: str | None = None) -> SweepInfo:
    """Reads the parent run's tags; swept params fall back to the params that vary across trials."""
    parent = select_parent(runs, parent_run_id)
    children = trial_runs(runs, str(parent["run_id"]))
    swept_tag = _tag(parent, "jepa.swept_params")
    if swept_tag:
        swept = tuple(json.loads(swept_tag))
    else:
        swept = infer_swept_params(cast_params(children))
    start, end = to_utc(pd.Series([parent["start_time"], parent["end_time"]]))
    return SweepInfo(
        name=_tag(parent, "jepa.sweep") or str(parent.get("experiment_id", "sweep")),
        parent_run_id=str(parent["run_id"]),
        swept_params=swept,
        metric=_tag(parent, "jepa.metric") or "probe_acc",
        goal=_tag(parent, "jepa.metric_goal") or "maximize",
        git_sha=_tag(parent, "jepa.git_sha"),
        host=_tag(parent, "jepa.host"),
        device=_tag(parent, "jepa.device"),
        status=None if pd.isna(parent.get("status")) else str(parent.get("status")),
        start_time=None if pd.isna(start) else start,
        end_time=None if pd.isna(end) else end,
    )


def trial_runs(runs: pd.DataFrame, parent_run_id: str) -> pd.DataFrame:
    """Child runs of the parent that are trials (runs without a role tag count as trials)."""
    parent_col = runs.get("tags.mlflow.parentRunId")
    if parent_col is None:
        return runs.iloc[0:0]
    children = runs[parent_col == parent_run_id]
    role = children.get("tags.jepa.role")
    if role is not None:
        children = children[role.isna() | (role == "trial")]
    return children


def infer_swept_params(params: pd.DataFrame) -> tuple[str, ...]:
    """Params that take more than one value across trials, seeds excluded."""
    varying = [c for c in params.columns if c not in SEED_KEYS and params[c].astype(str).nunique() > 1]
    return tuple(sorted(varying))


def format_value(value: Any) -> str:
    """A param value as a user wrote it: ``0.996``, ``3``, ``None``, ``l2``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        short = f"{float(value):g}"
        return short if float(short) == float(value) else repr(float(value))
    return str(value)


def display_labels(values: Any) -> dict[str, str]:
    """Exact label (:func:`format_value`) -> the shortest text that still tells the distinct values apart,
    so that sampled floats such as 0.4195254015709299 read as 0.4195 (4 significant digits at least)."""
    exact = {format_value(v): v for v in values}
    floats = {
        k: float(v) for k, v in exact.items() if isinstance(v, (float, np.floating)) and math.isfinite(v)
    }
    shown: dict[str, str] = {}
    for digits in range(4, 18):
        shown = {k: f"{v:.{digits}g}" for k, v in floats.items()}
        if len(set(shown.values())) == len(shown):
            break
    return {k: shown.get(k, k) for k in exact}


def trials_frame(runs: pd.DataFrame, info: SweepInfo) -> pd.DataFrame:
    """One tidy row per trial: ids, seed, swept params (cast), status, outcome and flags (see
    :func:`_outcomes`), duration and final metrics."""
    children = trial_runs(runs, info.parent_run_id).reset_index(drop=True)
    params = cast_params(children)
    out = pd.DataFrame({"run_id": children["run_id"].astype(str)})
    seed_tag = children.get("tags.jepa.seed")
    seed_param = params.get("train.seed")
    seeds = seed_tag.map(cast_param_value) if seed_tag is not None else pd.Series([None] * len(children))
    if seed_param is not None:
        seeds = seeds.where(seeds.notna(), seed_param)
    out["seed"] = pd.to_numeric(seeds, errors="coerce").astype("Int64")
    for key in info.swept_params:
        out[key] = params[key] if key in params else pd.Series([None] * len(children), dtype=object)
    # A readable name per configuration; the sweep's config_id tag (if any) stays the grouping key.
    names = {k: display_labels(out[k]) for k in info.swept_params}
    out["config"] = pd.Series(
        [
            ", ".join(f"{k}={names[k][format_value(out.at[i, k])]}" for k in info.swept_params) or "default"
            for i in range(len(out))
        ],
        dtype=object,
    )
    config_tag = children.get("tags.jepa.config_id")
    out["config_id"] = (
        out["config"] if config_tag is None else config_tag.where(config_tag.notna(), out["config"])
    )
    out["status"] = children["status"].astype(str)
    collapsed = children.get("tags.jepa.collapsed")
    flagged = [str(v).lower() == "true" for v in collapsed] if collapsed is not None else [False] * len(out)
    # The trainer's last ``collapsed`` metric also counts (a trial stopped by the driver has no tag); a trial
    # that failed before evaluating has neither and is not flagged.
    metric = pd.to_numeric(children.get("metrics.collapsed", pd.Series([0.0] * len(out))), errors="coerce")
    out["collapsed"] = pd.Series(flagged, dtype=bool) | (metric.fillna(0.0) >= 0.5).to_numpy()
    reason = children.get("tags.jepa.failure_reason")
    out["failure_reason"] = reason if reason is not None else None
    _outcomes(out, children, params)
    device = children.get("tags.jepa.device")
    out["device"] = device.fillna(info.device or "unknown") if device is not None else info.device
    out["start_time"] = to_utc(children["start_time"])
    out["end_time"] = to_utc(children["end_time"])
    out["duration_s"] = (out["end_time"] - out["start_time"]).dt.total_seconds()
    for column in sorted(
        c for c in children.columns if c.startswith("metrics.") and c != "metrics.collapsed"
    ):
        out[column[len("metrics.") :]] = pd.to_numeric(children[column], errors="coerce")
    return out


def _outcomes(out: pd.DataFrame, children: pd.DataFrame, params: pd.DataFrame) -> None:
    """Adds ``stopped_early``, ``metrics_version``, ``test_split_metrics``, ``outcome``, ``ranked`` and
    ``planned_epochs`` to the trials frame ``out``.

    ``outcome`` is ``completed`` (FINISHED at its last epoch), ``stopped early`` (FINISHED, tagged
    ``jepa.stopped_early=true`` by the ASHA scheduler), ``failed``, or the status in lower case. Runs without
    ``jepa.metrics_version`` >= 2 were logged before validation splits: their probe_acc/knn_acc are test-split
    figures (``test_split_metrics``). ``ranked`` marks the trials every statistic is taken over: completed, on
    the validation split when any completed trial is, else (an old sweep) on the legacy test split.
    """
    n = len(out)
    stopped = children.get("tags.jepa.stopped_early")
    out["stopped_early"] = [str(v).lower() == "true" for v in stopped] if stopped is not None else [False] * n
    version = children.get("tags.jepa.metrics_version", pd.Series([None] * n, index=children.index))
    out["metrics_version"] = version.where(version.notna(), None).to_numpy(dtype=object)
    validation = pd.to_numeric(version, errors="coerce").to_numpy() >= VALIDATION_METRICS_VERSION
    out["test_split_metrics"] = ~validation
    finished = out["status"] == "FINISHED"
    out["outcome"] = np.select(
        [finished & out["stopped_early"], finished, out["status"] == "FAILED"],
        ["stopped early", "completed", "failed"],
        default=out["status"].str.lower().to_numpy(),
    )
    completed = out["outcome"] == "completed"
    validation_ranking = bool((completed & validation).any())
    out["ranked"] = completed & (validation if validation_ranking else ~validation)
    planned = params.get("train.epochs")
    out["planned_epochs"] = (
        pd.to_numeric(planned, errors="coerce").astype("Int64") if planned is not None else pd.NA
    )


def ranks_test_split(trials: pd.DataFrame) -> bool:
    """Whether the ranked trials' probe_acc/knn_acc are legacy test-split figures."""
    ranked = trials[trials["ranked"]]
    return bool(len(ranked)) and bool(ranked["test_split_metrics"].all())


def epochs_reached(history: pd.DataFrame) -> pd.Series:
    """The last epoch (step) at which each run logged any metric, indexed by run id."""
    return history.groupby("run_id")["step"].max()


def tidy_history(history: pd.DataFrame) -> pd.DataFrame:
    """Metric histories as ``run_id, key, step, value``, one value per (run, key, step): the last logged."""
    missing = {"run_id", "key", "step", "value"} - set(history.columns)
    if missing:
        raise ValueError(f"history frame lacks columns {sorted(missing)}")
    frame = history
    if "timestamp" in frame.columns:  # a retried epoch logs twice: keep the later value
        frame = frame.sort_values("timestamp", kind="stable")
    frame = frame.drop_duplicates(["run_id", "key", "step"], keep="last")
    frame = frame[["run_id", "key", "step", "value"]].astype({"step": "int64", "value": "float64"})
    return frame.sort_values(["run_id", "key", "step"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------- statistics
def level_sort_key(value: Any) -> tuple[int, Any]:
    """Sorts None first, then numbers and intervals by value, then strings."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (0, 0)
    if isinstance(value, pd.Interval):
        return (1, value.left)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (1, float(value))
    return (2, str(value))


def param_levels(trials: pd.DataFrame, param: str, max_levels: int = 12) -> pd.Series:
    """The levels a parameter's table rows are: its values, or quantile bins when a random or Optuna
    sweep drew more than ``max_levels`` distinct numbers (a row per draw would be one trial each)."""
    values = trials[param]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric or values.nunique() <= max_levels:
        return values.astype(object)
    bins = pd.qcut(values, q=min(8, max_levels), duplicates="drop")
    return bins.astype(object)


def summarize(trials: pd.DataFrame, by: str, metrics: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``by``: n and, per metric, ``<m>_mean`` and ``<m>_ci`` over the ranked trials."""
    done = trials[trials["ranked"]]
    metrics = [m for m in metrics if m in done.columns]
    # Group on the displayed label so None/NaN and mixed-type values form one group each.
    groups = done.groupby(done[by].map(format_value), sort=False)
    first_rows = {label: done[by].iloc[idx[0]] for label, idx in groups.indices.items()}
    out = pd.DataFrame({by: pd.Series(first_rows, dtype=object), "n": groups.size()})
    for m in metrics:
        out[f"{m}_mean"] = groups[m].mean()
        out[f"{m}_ci"] = rs.t_half_width(groups[m].std(ddof=1), groups[m].count(), confidence)
    out = out.reset_index(drop=True)
    order = sorted(range(len(out)), key=lambda i: level_sort_key(out[by].iloc[i]))
    return out.iloc[order].reset_index(drop=True)


def parameter_table(
    trials: pd.DataFrame, param: str, metrics: list[str], max_levels: int = 12
) -> pd.DataFrame:
    """Every value (or bin) of one swept parameter with mean and CI of each metric over its trials."""
    leveled = trials.assign(**{param: param_levels(trials, param, max_levels)})
    return summarize(leveled, param, metrics)


def blocked_comparison(
    trials: pd.DataFrame, by: pd.Series, metric: str, goal: str, alpha: float = ALPHA
) -> rs.BestComparison | None:
    """:func:`orchestrator.report.stats.compare_with_best` over the ranked trials: groups labelled by
    :func:`format_value` of ``by``, seeds as blocks. None when the metric is missing or < 2 groups have it."""
    if metric not in trials.columns:
        return None
    ranked = trials["ranked"].to_numpy(dtype=bool)
    groups = by[ranked].map(format_value)
    return rs.compare_with_best(trials.loc[ranked, metric], groups, trials.loc[ranked, "seed"], goal, alpha)


def leaderboard(
    trials: pd.DataFrame, info: SweepInfo, metrics: list[str], alpha: float = ALPHA
) -> pd.DataFrame:
    """Configurations (swept values, seeds pooled) ranked by the sweep's metric over the ranked trials.

    Columns: ``rank``, ``config_id``, the swept params, ``n`` (ranked trials), ``<m>_mean`` and ``<m>_ci``
    (t interval over seeds) per metric, ``trials`` (all), ``failed``, ``stopped_early``, ``legacy_apart``
    (completed on the legacy test split while the ranking is on validation), ``collapsed``,
    ``seeds`` (``n/trials``, e.g. ``2/3``), ``ci_from_2_seeds``, then the comparison with the best
    (:func:`blocked_comparison`): ``<metric>_seed_adjusted`` (the ranking key: the plain mean when every
    configuration has every seed), ``diff_vs_best`` (best minus this configuration), ``diff_ci_low``,
    ``diff_ci_high`` (simultaneous interval), ``p_vs_best_adjusted`` and ``distinguishable_from_best``, all
    empty on the best row. Configurations without a ranked trial come last.
    """
    table = summarize(trials, "config_id", metrics)
    firsts = trials.drop_duplicates("config_id").set_index("config_id")
    flags = trials.assign(
        failed=trials["outcome"] == "failed", stopped=trials["outcome"] == "stopped early",
        apart=(trials["outcome"] == "completed") & ~trials["ranked"],
    )  # fmt: skip
    counts = flags.groupby("config_id").agg(
        trials=("run_id", "size"), failed=("failed", "sum"), stopped_early=("stopped", "sum"),
        legacy_apart=("apart", "sum"), collapsed=("collapsed", "sum"),
    )  # fmt: skip
    missing = [c for c in counts.index if c not in set(table["config_id"])]
    table = pd.concat([table, pd.DataFrame({"config_id": missing, "n": 0})], ignore_index=True)
    for key in info.swept_params:
        table.insert(table.columns.get_loc("n"), key, [firsts.at[c, key] for c in table["config_id"]])
    for column in counts.columns:
        table[column] = counts.loc[table["config_id"], column].to_numpy().astype(int)
    table["seeds"] = [f"{n}/{t}" for n, t in zip(table["n"], table["trials"], strict=True)]
    table["ci_from_2_seeds"] = table["n"] == 2
    result = blocked_comparison(trials, trials["config_id"], info.metric, info.goal, alpha)
    ids = table["config_id"].map(format_value)
    found = result.table if result is not None else pd.DataFrame(columns=rs.COLUMNS)
    for column, source in (
        (f"{info.metric}_seed_adjusted", "adjusted_mean"), ("diff_vs_best", "diff"),
        ("diff_ci_low", "ci_low"), ("diff_ci_high", "ci_high"), ("p_vs_best_adjusted", "p_adjusted"),
        ("distinguishable_from_best", "distinguishable"),
    ):  # fmt: skip
        table[column] = ids.map(found[source]).to_numpy()
    if result is not None:
        position = ids.map({label: i for i, label in enumerate(result.labels)})
    else:  # no comparison (one configuration, or the metric not logged): plain means decide
        sort_col = f"{info.metric}_mean"
        sign = 1 if info.goal == "minimize" else -1
        position = sign * table[sort_col] if sort_col in table.columns else pd.Series(0, index=table.index)
    table = table.iloc[np.argsort(position.to_numpy(dtype=float), kind="stable")]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def format_mean_ci(mean: float, half: float, spec: MetricSpec, unit: bool = False) -> str:
    """``82.00 ± 2.48`` in the metric's display scale (``82.00 ± 2.48 %`` with ``unit``); the bare mean
    when there is no interval (one seed)."""
    if mean is None or not np.isfinite(mean):
        return "–"
    text = f"{mean * spec.scale:,.{spec.decimals}f}"
    if half is not None and np.isfinite(half):
        text += f" ± {half * spec.scale:,.{spec.decimals}f}"
    return f"{text} {spec.unit}" if unit and spec.unit else text


def metric_spec(key: str) -> MetricSpec:
    """The display spec of a metric (unknown metrics shown raw)."""
    return next((s for s in METRIC_SPECS if s.key == key), MetricSpec(key, key, "", 1.0, 4))


def _listing(labels: list[str], name: Any, limit: int = 8) -> str:
    shown = ", ".join(name(g) for g in labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def format_p(p: float) -> str:
    """An adjusted p-value as printed; the studentized range's tail under 1e-9 counts as 0, so says so."""
    return f"{p:.3g}" if p >= 1e-9 else "< 1e-9"


def compare_best(
    trials: pd.DataFrame,
    by: pd.Series,
    metric: str,
    goal: str,
    what: str,
    names: dict[str, str] | None = None,
    alpha: float = ALPHA,
    pooled: tuple[str, ...] = (),
    count: str = "seeds",
    power: bool = False,
) -> Comparison | None:
    """The best group of ``by`` against every other on ``metric`` (:func:`blocked_comparison`), in words.

    Args:
        trials: Tidy trials frame.
        by: Group label per trial (aligned with ``trials``), e.g. config ids or a parameter's levels.
        metric: Metric column; the best is the top seed-adjusted mean in the direction of ``goal``.
        goal: ``maximize`` or ``minimize``.
        what: How the groups are named in the sentence, e.g. ``"`mask.ratio` ="`` or ``"configuration"``.
        names: Display text per exact group label (see :func:`display_labels`).
        alpha: Familywise error rate (0.05: simultaneous 95% intervals).
        pooled: Other swept parameters, whose effects the model leaves in the residual (parameter tables).
        count: What a group's trials are called: ``seeds`` for configurations, ``trials`` for levels.
        power: When nothing is distinguishable from the best, add how many seeds per configuration would
            detect the observed best-minus-runner-up difference
            (:func:`orchestrator.report.stats.seeds_for_power`).

    Returns:
        None when fewer than two groups have a finite metric.
    """
    result = blocked_comparison(trials, by, metric, goal, alpha)
    if result is None:
        return None
    spec, shown = metric_spec(metric), names or {}

    def name(group: str) -> str:  # configuration names hold commas: quoted, so lists of them stay readable
        text = shown.get(group, group)
        return f"`{text}`" if count == "seeds" else text

    unit = "points" if spec.unit == "%" else spec.unit
    groups = by.map(format_value)
    total, failed = groups.value_counts(), groups[trials["outcome"] == "failed"].value_counts()

    def scaled(x: float, sign: str = "") -> str:
        return f"{x * spec.scale:{sign},.{spec.decimals}f}"

    def about(group: str) -> str:
        rows = trials["ranked"] & (groups == group)
        mean, half, n = rs.t_interval(trials.loc[rows, metric])
        text = f"{spec.name} {format_mean_ci(mean, half, spec, unit=True)}{' †' if n == 2 else ''}"
        text += f", {int(rows.sum())}/{total[group]} {count} complete"
        if failed.get(group, 0):
            text += f"; {failed[group]} failed, so its figures are over the survivors and may flatter it"
        return text

    others, best = result.others, result.best
    plural = "s" if len(others) != 1 else ""
    terms = f"{'configuration' if count == 'seeds' else 'level'}{' + seed' if result.blocked else ''}"
    model = f"`{metric} ~ {terms}` fitted by least squares"
    if pooled:
        model += "; " + ", ".join(f"`{p}`" for p in pooled) + " left in the residual"
    if result.reason is None:
        model += f"; residual sd {scaled(result.residual_sd)} {unit}, {result.df} degrees of freedom"
    text = (
        f"Best {what} {name(best)} ({about(best)}) against the {len(others)} other{plural} by "
        f"{result.test} ({model}): "
    )
    apart = [g for g in result.labels if not result.table.at[g, "compared"]]
    if result.reason is not None:
        text += f"no test: {result.reason}."
    else:
        row = result.table.loc[result.runner_up]
        runner = (
            f"runner-up {name(result.runner_up)} ({about(result.runner_up)}): "
            f"best − runner-up = {scaled(row['diff'], '+')} {unit}, simultaneous "
            f"{100 * (1 - alpha):g}% interval {scaled(row['ci_low'], '+')} to {scaled(row['ci_high'], '+')}, "
            f"adjusted p {'' if row['p_adjusted'] < 1e-9 else '= '}{format_p(row['p_adjusted'])}"
        )
        found = result.distinguishable_from
        if len(found) == len(others):
            text += (
                f"distinguishable from {'all ' + str(len(others)) if len(others) > 1 else 'it'}; {runner}."
            )
        elif found:
            rest = [g for g in others if g not in found]
            text += (
                f"distinguishable from {len(found)} of {len(others)} ({_listing(found, name)}), not from "
                f"{_listing(rest, name)}; {runner}."
            )
        else:
            many = f"any of the {len(others)}" if len(others) > 1 else "it"
            text += f"not distinguishable from {many}; {runner}."
            if power:
                text += " " + _power_sentence(row["diff"], result, scaled, unit)
    if apart:
        text += f" Not compared (no seed shared with the others): {_listing(apart, name)}."
    return Comparison(result, text)


def _power_sentence(diff: float, result: rs.BestComparison, scaled: Any, unit: str) -> str:
    seeds = rs.seeds_for_power(
        diff, result.residual_sd, result.k, result.alpha, POWER, MAX_POWER_SEEDS, result.blocked
    )
    df = "(k − 1)(n − 1)" if result.blocked else "k(n − 1)"
    needed = f"about {seeds}" if seeds is not None else f"more than {MAX_POWER_SEEDS}"
    return (
        f"At this residual sd, {needed} seeds per configuration would detect a best − runner-up difference "
        f"of {scaled(abs(diff))} {unit} with {100 * POWER:g}% power by the same test (a balanced sweep of "
        f"the same {result.k} configurations; normal approximation with the Tukey critical value at "
        f"{df} degrees of freedom)."
    )


def per_seed(trials: pd.DataFrame, levels: pd.Series, metric: str) -> pd.DataFrame:
    """Per seed and level (``levels`` aligned with ``trials``, e.g. :func:`param_levels`): ``value``, the
    mean of ``metric`` over that seed's ranked trials at that level, and ``n``, their count (more than 1 when
    other swept parameters are pooled), sorted by seed. ``level`` is the :func:`format_value` label. Means
    over seeds hide how far one seed moves the metric; these rows show it. Trials without a seed are left
    out."""
    if metric not in trials.columns:
        return pd.DataFrame(columns=["seed", "level", "value", "n"])
    keep = trials["ranked"] & trials["seed"].notna() & np.isfinite(trials[metric].to_numpy(dtype=float))
    done = trials[keep]
    by = [done["seed"].astype(int), levels[keep].map(format_value).rename("level")]
    return done.groupby(by)[metric].agg(value="mean", n="count").reset_index()


def seed_note(
    seeds: pd.DataFrame, param: str, metric: str, pooled: tuple[str, ...] = ()
) -> tuple[str, str] | None:
    """The caption of a :func:`per_seed` frame's plot and the sentence that sets seed against setting, in
    the metric's display unit: the seeds' range (highest − lowest) at one level, averaged over the levels two
    or more seeds reached, beside the range of the per-level means over seeds (the plot's black line). None
    without two levels or without a level two seeds reached: nothing to set side by side."""
    by_level = seeds.groupby("level")["value"]
    spans = (by_level.max() - by_level.min())[by_level.count() >= 2]
    means = by_level.mean()
    if len(means) < 2 or spans.empty:
        return None
    spec = metric_spec(metric)
    unit = " points" if spec.unit == "%" else f" {spec.unit}" if spec.unit else ""
    others = ", ".join(f"`{p}`" for p in pooled)
    caption = f"{metric} per seed across {param} (one line per seed; black: mean over seeds"
    caption += f"; a point is the seed's mean over {', '.join(pooled)})" if pooled else ")"
    each = f" (each a seed's mean over {others})" if pooled else ""
    sentence = (
        f"Seed against setting on `{metric}`: at one value of `{param}` the seeds{each} span "
        f"{spans.mean() * spec.scale:,.{spec.decimals}f}{unit} on average (highest − lowest seed at each of "
        f"the {len(spans)} value{'s' if len(spans) != 1 else ''} two or more seeds reached); the mean over "
        f"seeds spans {(means.max() - means.min()) * spec.scale:,.{spec.decimals}f}{unit} across the "
        f"{len(means)} values (highest − lowest)."
    )
    return caption, sentence


def learning_curves(history: pd.DataFrame, trials: pd.DataFrame, key: str, by: pd.Series) -> pd.DataFrame:
    """Per group of ``by`` and epoch: mean, 95% CI half-width and n of metric ``key`` over ranked trials
    (trials stopped early would make the later epochs' means those of the survivors)."""
    done = trials["ranked"]
    groups = pd.DataFrame({"run_id": trials.loc[done, "run_id"], "group": by[done].map(format_value)})
    rows = history[history["key"] == key].merge(groups, on="run_id")
    if rows.empty:
        return pd.DataFrame(columns=["group", "step", "mean", "ci", "n"])
    out = rows.groupby(["group", "step"], sort=True)["value"].agg(mean="mean", std="std", n="count")
    out = out.reset_index()
    out["ci"] = rs.t_half_width(out["std"], out["n"])
    return out.drop(columns="std")


def param_importance(
    trials: pd.DataFrame, params: list[str], metric: str, resamples: int = IMPORTANCE_RESAMPLES
) -> Importance:
    """fANOVA importances of the swept parameters for ``metric`` via Optuna, over ``resamples`` bootstrap
    resamples of the ranked trials, each averaged per configuration (mean and 5-95% range; see
    :func:`orchestrator.report.stats.bootstrap_importance`); a main-effect variance split if Optuna fails.
    Absent, with the reason, below :data:`MIN_IMPORTANCE_CONFIGS` distinct configurations."""
    if metric not in trials.columns:
        return Importance({}, "none", f"metric {metric} was not logged")
    done = trials[trials["ranked"] & np.isfinite(trials[metric])].reset_index(drop=True)
    configs = done["config_id"].nunique()
    if configs < MIN_IMPORTANCE_CONFIGS:
        return Importance(
            {}, "none", f"fewer than {MIN_IMPORTANCE_CONFIGS} configurations ({configs}): "
            "importance would not mean anything",
        )  # fmt: skip
    usable = [p for p in params if done[p].map(format_value).nunique() > 1]
    if not usable:
        return Importance({}, "none", "no swept parameter varies across the ranked trials")
    # Numbers stay numbers (ordered, fANOVA splits them); anything else becomes its display text, so mixed
    # values such as None and 3000 are one categorical.
    numeric = {
        p: pd.api.types.is_numeric_dtype(done[p]) and not pd.api.types.is_bool_dtype(done[p]) for p in usable
    }
    x = pd.DataFrame({p: done[p] if numeric[p] else done[p].map(format_value) for p in usable})
    fits, method, note = rs.bootstrap_importance(
        x, done[metric], done["config_id"], resamples, IMPORTANCE_TREES
    )
    mean = fits.mean().sort_values(ascending=False)
    low, high = fits.quantile(0.05), fits.quantile(0.95)
    return Importance(
        {p: float(mean[p]) for p in mean.index}, method, note,
        {p: float(low[p]) for p in mean.index}, {p: float(high[p]) for p in mean.index}, len(fits),
    )  # fmt: skip
