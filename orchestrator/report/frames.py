"""Tidy pandas frames of a sweep from what MLflow gives back: the sweep's parent, its trials, their histories.

Everything here is a pure function of two frames, so it can be tested on hand-built frames and a report can
be rebuilt from MLflow alone:

* ``runs``: the frame of ``mlflow.search_runs`` (``run_id``, ``status``, ``start_time``, ``end_time``,
  ``params.*`` as strings, ``metrics.*`` holding each metric's last value, ``tags.*``) with the sweep's parent
  run and its trial runs (:func:`orchestrator.report.fetch.fetch_runs`);
* ``history``: a long frame of metric histories with columns ``run_id``, ``key``, ``step``, ``value``
  (:func:`orchestrator.report.fetch.fetch_histories`).

Statistics are taken over the *ranked* trials only (column ``ranked`` of :func:`trials_frame`): trials that
ran to their last epoch, on one metrics version. Trials the scheduler stopped early reached an earlier epoch
and failed trials have no final figure; both are counted against their configuration (``seeds``) and listed
apart, never pooled (:mod:`orchestrator.report.summary`, :mod:`orchestrator.report.comparison`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.report import stats as rs
from orchestrator.report.display import display_labels, format_value

SEED_KEYS = ("train.seed",)  # never a swept parameter: seeds are what the intervals are taken over
VALIDATION_METRICS_VERSION = 2  # jepa.metrics_version from which probe_acc/knn_acc are validation figures
LEGACY_SPLIT_NOTE = "probe_acc/knn_acc measured on the test split (logged before validation splits)"


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
    profile: str | None  # gpu | cpu | smoke, with why (sweeps before profiles: None, or "smoke")
    status: str | None
    start_time: pd.Timestamp | None
    end_time: pd.Timestamp | None


def _profile(parent: pd.Series) -> str | None:
    """``cpu (the Ray cluster has no GPU)``: the profile a sweep ran and why, from its parent run's tags."""
    profile = _tag(parent, "jepa.profile") or ("smoke" if _tag(parent, "jepa.smoke") == "true" else None)
    why = _tag(parent, "jepa.profile_reason")
    return f"{profile} ({why})" if profile and why else profile


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
        profile=_profile(parent),
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


def collapse_threshold(runs: pd.DataFrame, info: SweepInfo) -> tuple[float, str] | None:
    """RankMe's collapse line, ``eval.collapse_threshold`` × ``model.embed_dim``, when all trials share it."""
    params = cast_params(trial_runs(runs, info.parent_run_id))
    if not {"eval.collapse_threshold", "model.embed_dim"} <= set(params.columns):
        return None
    line = (params["eval.collapse_threshold"] * params["model.embed_dim"]).dropna().unique()
    return (float(line[0]), f"collapse threshold ({line[0]:g})") if len(line) == 1 else None
