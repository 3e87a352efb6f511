"""Tidy pandas frames and statistics for sweep reports.

Everything here is a pure function of what MLflow gives back, so it can be tested on hand-built frames and a
report can be rebuilt from MLflow alone:

* ``runs``: the frame of ``mlflow.search_runs`` (``run_id``, ``status``, ``start_time``, ``end_time``,
  ``params.*`` as strings, ``metrics.*`` holding each metric's last value, ``tags.*``) with the sweep's parent
  run and its trial runs;
* ``history``: a long frame of metric histories with columns ``run_id``, ``key``, ``step``, ``value``.

Intervals are 95% confidence intervals of the mean over seeds with the t distribution. The best setting is
compared with the runner-up by a paired t-test over the seeds they share when each ran once per seed (a
seed fixes the initial weights, data order and masks, so its effect cancels out of the differences), else by
Welch's t-test, which does not assume equal variances across settings.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

SEED_KEYS = ("train.seed",)  # never a swept parameter: seeds are what the intervals are taken over
ALPHA = 0.05


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
    MetricSpec("knn_acc", "kNN acc", "%", 100.0, 2),
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
    """The best group against the runner-up on one metric."""

    best: Any
    runner_up: Any
    p_value: float | None
    distinguishable: bool
    sentence: str


@dataclass(frozen=True)
class Importance:
    """Parameter importances (normalized to sum 1) and how they were obtained."""

    values: dict[str, float]
    method: str
    note: str | None = None


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
    """One tidy row per trial: ids, seed, swept params (cast), status, flags, duration and final metrics."""
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
def t_interval(values: Any, confidence: float = 0.95) -> tuple[float, float, int]:
    """Mean, half-width of the t confidence interval of the mean, and n (NaN half-width when n < 2)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(x[0]), math.nan, 1
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


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
    """Per group of ``by``: n and, per metric, ``<m>_mean`` and ``<m>_ci`` over finished trials."""
    done = trials[trials["status"] == "FINISHED"]
    metrics = [m for m in metrics if m in done.columns]
    # Group on the displayed label so None/NaN and mixed-type values form one group each.
    groups = done.groupby(done[by].map(format_value), sort=False)
    first_rows = {label: done[by].iloc[idx[0]] for label, idx in groups.indices.items()}
    out = pd.DataFrame({by: pd.Series(first_rows, dtype=object), "n": groups.size()})
    for m in metrics:
        mean, std, count = groups[m].mean(), groups[m].std(ddof=1), groups[m].count()
        with np.errstate(invalid="ignore", divide="ignore"):
            quantile = stats.t.ppf(0.5 + confidence / 2, (count - 1).clip(lower=1).to_numpy())
            half = quantile * std.to_numpy() / np.sqrt(count.to_numpy())
        out[f"{m}_mean"] = mean
        out[f"{m}_ci"] = np.where(count.to_numpy() >= 2, half, np.nan)
    out = out.reset_index(drop=True)
    order = sorted(range(len(out)), key=lambda i: level_sort_key(out[by].iloc[i]))
    return out.iloc[order].reset_index(drop=True)


def parameter_table(
    trials: pd.DataFrame, param: str, metrics: list[str], max_levels: int = 12
) -> pd.DataFrame:
    """Every value (or bin) of one swept parameter with mean and CI of each metric over its trials."""
    leveled = trials.assign(**{param: param_levels(trials, param, max_levels)})
    return summarize(leveled, param, metrics)


def leaderboard(trials: pd.DataFrame, info: SweepInfo, metrics: list[str]) -> pd.DataFrame:
    """Configurations (swept values, seeds pooled) ranked by the sweep's metric; all-failed ones last."""
    table = summarize(trials, "config_id", metrics)
    firsts = trials.drop_duplicates("config_id").set_index("config_id")
    counts = trials.groupby("config_id").agg(trials=("run_id", "size"), collapsed=("collapsed", "sum"))
    missing = [c for c in counts.index if c not in set(table["config_id"])]
    table = pd.concat([table, pd.DataFrame({"config_id": missing, "n": 0})], ignore_index=True)
    for key in info.swept_params:
        table.insert(table.columns.get_loc("n"), key, [firsts.at[c, key] for c in table["config_id"]])
    table["trials"] = counts.loc[table["config_id"], "trials"].to_numpy()
    table["collapsed"] = counts.loc[table["config_id"], "collapsed"].to_numpy().astype(int)
    sort_col = f"{info.metric}_mean"
    if sort_col in table.columns:
        table = table.sort_values(
            sort_col, ascending=info.goal == "minimize", na_position="last", kind="stable"
        )
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


def _paired(
    trials: pd.DataFrame, done: pd.Series, groups: pd.Series, best: str, second: str, metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """The two groups' values aligned by seed, when each ran exactly once on the same seeds (>= 2 of them)."""
    if "seed" not in trials.columns:
        return None
    frames = []
    for label in (best, second):
        rows = trials.loc[done & (groups == label), ["seed", metric]]
        if rows["seed"].isna().any() or rows["seed"].duplicated().any():
            return None
        frames.append(rows.set_index("seed")[metric])
    a, b = frames
    if len(a) < 2 or set(a.index) != set(b.index):
        return None
    order = sorted(a.index)
    return a.loc[order].to_numpy(dtype=float), b.loc[order].to_numpy(dtype=float)


def compare_best(
    trials: pd.DataFrame,
    by: pd.Series,
    metric: str,
    goal: str,
    what: str,
    names: dict[str, str] | None = None,
    alpha: float = ALPHA,
) -> Comparison | None:
    """t-test of the best group of ``by`` against the runner-up on ``metric`` (finished trials): paired by
    seed when both groups ran once on each of the same seeds, else Welch's.

    Args:
        trials: Tidy trials frame.
        by: Group label per trial (aligned with ``trials``), e.g. a parameter's levels or config ids.
        metric: Metric column; groups are ranked by its mean in the direction of ``goal``.
        goal: ``maximize`` or ``minimize``.
        what: How the groups are named in the sentence, e.g. ``"`mask.ratio` ="`` or ``"configuration"``.
        names: Display text per exact group label (see :func:`display_labels`).
        alpha: Significance level.

    Returns:
        None when fewer than two groups have a finite metric.
    """
    if metric not in trials.columns:
        return None
    done = (trials["status"] == "FINISHED") & np.isfinite(trials[metric])
    groups = by.map(format_value)
    samples = {
        label: values.to_numpy(dtype=float)
        for label, values in trials.loc[done, metric].groupby(groups[done])
    }
    if len(samples) < 2:
        return None
    ranked = sorted(samples, key=lambda k: samples[k].mean(), reverse=goal != "minimize")
    best, second = ranked[0], ranked[1]
    a, b = samples[best], samples[second]
    spec = metric_spec(metric)
    shown = names or {}
    value_a, value_b = (format_mean_ci(*t_interval(x)[:2], spec, unit=True) for x in (a, b))
    desc = (
        f"Best {what} {shown.get(best, best)} ({spec.name} {value_a}, n={len(a)}) "
        f"vs runner-up {shown.get(second, second)} ({value_b}, n={len(b)})"
    )
    p: float | None = None
    pairs = _paired(trials, done, groups, best, second, metric)
    test = f"paired t-test over {len(pairs[0])} shared seeds" if pairs is not None else "Welch t-test"
    if len(a) < 2 or len(b) < 2:
        verdict = "not distinguishable (fewer than 2 seeds, no test possible)"
    else:
        with warnings.catch_warnings():  # identical seeds: scipy warns, then returns p = nan (or 0)
            warnings.simplefilter("ignore", RuntimeWarning)
            if pairs is not None:
                p = float(stats.ttest_rel(*pairs).pvalue)
            else:
                p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        if not np.isfinite(p):
            p, verdict = None, "not distinguishable (no variance across seeds: the t-test is undefined)"
        elif p < alpha:
            verdict = f"distinguishable ({test}, p = {p:.3g} < {alpha})"
        else:
            verdict = (
                f"not distinguishable ({test}, p = {p:.3g} ≥ {alpha}); "
                "more seeds would be needed to tell them apart"
            )
    return Comparison(best, second, p, verdict.startswith("distinguishable"), f"{desc}: {verdict}.")


def learning_curves(history: pd.DataFrame, trials: pd.DataFrame, key: str, by: pd.Series) -> pd.DataFrame:
    """Per group of ``by`` and epoch: mean, 95% CI half-width and n of metric ``key`` over finished trials."""
    done = trials["status"] == "FINISHED"
    groups = pd.DataFrame({"run_id": trials.loc[done, "run_id"], "group": by[done].map(format_value)})
    rows = history[history["key"] == key].merge(groups, on="run_id")
    if rows.empty:
        return pd.DataFrame(columns=["group", "step", "mean", "ci", "n"])
    g = rows.groupby(["group", "step"], sort=True)["value"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = stats.t.ppf(0.975, (out["n"] - 1).clip(lower=1))
        out["ci"] = np.where(out["n"] >= 2, quantile * out["std"] / np.sqrt(out["n"]), np.nan)
    return out.drop(columns="std")


def param_importance(trials: pd.DataFrame, params: list[str], metric: str) -> Importance:
    """fANOVA importances of the swept parameters for ``metric`` via Optuna, on an in-memory study built
    from the finished trials; falls back to a main-effect variance decomposition if Optuna fails."""
    if metric not in trials.columns:
        return Importance({}, "none", f"metric {metric} was not logged")
    done = trials[(trials["status"] == "FINISHED") & np.isfinite(trials[metric])]
    usable = [p for p in params if done[p].map(format_value).nunique() > 1]
    if len(done) < 3 or not usable:
        return Importance({}, "none", f"too few finished trials or varying parameters ({len(done)} trials)")
    try:
        return Importance(_optuna_importance(done, usable, metric), "Optuna fANOVA")
    except Exception as exc:  # report the failure and fall back rather than lose the whole report
        note = f"Optuna's fANOVA failed ({type(exc).__name__}: {exc}); showing a main-effect variance split"
        return Importance(_main_effect_shares(done, usable, metric), "main-effect variance share", note)


def _optuna_importance(done: pd.DataFrame, params: list[str], metric: str) -> dict[str, float]:
    import optuna  # imported late: optuna is slow to import and only multi-parameter sweeps need it

    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    columns: dict[str, list[Any]] = {}
    for p in params:
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in done[p]]
        numbers = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)
        if numbers and all(float(v).is_integer() and isinstance(v, (int, np.integer)) for v in values):
            distributions[p] = optuna.distributions.IntDistribution(int(min(values)), int(max(values)))
            columns[p] = [int(v) for v in values]
        elif numbers:
            distributions[p] = optuna.distributions.FloatDistribution(float(min(values)), float(max(values)))
            columns[p] = [float(v) for v in values]
        else:  # categorical: strings keep mixed types such as None and numbers comparable
            columns[p] = [format_value(v) for v in values]
            distributions[p] = optuna.distributions.CategoricalDistribution(sorted(set(columns[p])))
    frozen = [
        optuna.trial.create_trial(
            value=float(value), params={p: columns[p][i] for p in params}, distributions=distributions
        )
        for i, value in enumerate(done[metric])
    ]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # create_study logs one INFO line per study
    try:
        study = optuna.create_study()
        study.add_trials(frozen)
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        result = optuna.importance.get_param_importances(study, evaluator=evaluator, params=params)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {k: float(v) for k, v in result.items()}


def _main_effect_shares(done: pd.DataFrame, params: list[str], metric: str) -> dict[str, float]:
    """Between-group variance of each parameter's marginal means, normalized to sum 1."""
    y = done[metric].to_numpy(dtype=float)
    total = float(((y - y.mean()) ** 2).sum())
    effects = {}
    for p in params:
        g = done.groupby(done[p].map(format_value))[metric]
        effects[p] = float((g.count() * (g.mean() - y.mean()) ** 2).sum()) / total if total > 0 else 0.0
    norm = sum(effects.values()) or 1.0
    return dict(sorted(((k, v / norm) for k, v in effects.items()), key=lambda kv: -kv[1]))
