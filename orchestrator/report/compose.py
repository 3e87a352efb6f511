"""Sweep comparison reports: which setting won, and whether the difference is real.

Reads a sweep's parent run and trial runs back from MLflow (nothing else), turns them into tidy frames with
:mod:`orchestrator.report.frames`, draws :mod:`orchestrator.report.plots`, and writes
``<out>/<sweep>/<stamp>/{report.md, report.html, trials.csv, leaderboard.csv, *.png}``, then logs that folder
as the parent run's ``report`` artifacts.

Usage::

    python -m orchestrator.report --experiment NAME [--run-id PARENT] [--out DIR] [--tracking-uri URI]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.report import frames as rd
from orchestrator.report import plots as rp
from orchestrator.report import stats as rs
from orchestrator.report.plots import Doc
from orchestrator.tracking import runs as tracking
from orchestrator.tracking import ui as mlflow_ui

HISTORY_KEYS = ("probe_acc", "train_loss", "rankme")  # the curves the report draws
LEADERBOARD_ROWS = 50  # the markdown shows the top rows; leaderboard.csv has them all
BULK_CHUNK = 500  # run ids per SQL IN (...) clause, well under SQLite's variable limit
REST_BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
REST_RUNS, REST_POINTS = 100, 25000  # that endpoint's limits: runs per request, points per answer


class ReportInputError(ValueError):
    """Bad input (unknown experiment, bad run id, no runs); the message is one line."""


# --------------------------------------------------------------------------------------------- MLflow I/O
def resolve_tracking_uri(cli_uri: str | None = None) -> str:
    """``--tracking-uri`` > ``$MLFLOW_TRACKING_URI`` > ``sqlite:///<cwd>/mlflow.db``: the sweep's own
    resolution (:func:`orchestrator.tracking.runs.resolve_tracking_uri`) without a sweep file."""
    return tracking.resolve_tracking_uri(cli_uri, None)


def runs_to_frame(runs: Iterable[Any]) -> pd.DataFrame:
    """MLflow ``Run`` entities as the frame ``mlflow.search_runs`` returns, minus its global tracking URI."""
    records = []
    for run in runs:
        record: dict[str, Any] = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "status": run.info.status,
            "artifact_uri": run.info.artifact_uri,
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
        }
        record.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        record.update({f"params.{k}": v for k, v in run.data.params.items()})
        record.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(pd.to_numeric(frame[column]), unit="ms", utc=True)
    return frame


def _search_all(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def fetch_runs(client: Any, experiment: str, parent_run_id: str | None) -> tuple[pd.DataFrame, str]:
    """The parent run (given, or the experiment's latest ``jepa.role=sweep`` run) and its trial runs."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ReportInputError(f"unknown experiment {experiment!r}")
    if parent_run_id:
        try:
            parent = client.get_run(parent_run_id)
        except MlflowException as exc:
            raise ReportInputError(f"no run {parent_run_id!r}: {tracking.one_line(exc.message)}") from None
        if parent.info.experiment_id != exp.experiment_id:
            raise ReportInputError(f"run {parent_run_id} belongs to another experiment than {experiment!r}")
    else:
        found = client.search_runs(
            [exp.experiment_id], "tags.`jepa.role` = 'sweep'", max_results=1, order_by=["start_time DESC"]
        )
        if not found:
            raise ReportInputError(f"experiment {experiment!r} has no sweep parent run (tag jepa.role=sweep)")
        parent = found[0]
    children = _search_all(client, exp.experiment_id, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    if not children:
        raise ReportInputError(f"parent run {parent.info.run_id} of {experiment!r} has no trial runs")
    return runs_to_frame([parent, *children]), parent.info.run_id


def _store(client: Any) -> Any:
    # The public client has no call for many runs' histories at once; its store does (SQL) or can reach
    # the server's endpoint for it (REST), so the two bulk paths go through the client's store.
    return getattr(getattr(client, "_tracking_client", None), "store", None)


def has_bulk_history(client: Any) -> bool:
    """Whether the client talks to a SQL store directly, which answers all runs' histories in one query."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return isinstance(_store(client), SqlAlchemyStore)


def fetch_histories(
    client: Any, runs: pd.DataFrame, keys: Iterable[str], use_bulk: bool = True, workers: int = 8
) -> pd.DataFrame:
    """Long frame (run_id, key, step, value, timestamp) of the given metrics of every run.

    SQL stores answer one SELECT per chunk of 500 runs. An ``http://`` server answers 100 runs per request
    of ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk``. Anything else, or a server that refuses that
    endpoint, gets one documented ``get_metric_history`` call per run and metric in a thread pool (each a
    network round trip that costs the server a query: about 3,000 of them for 1,000 trials).
    """
    # Every run for every logged key: a last value of NaN may hide a logged NaN (a diverged trial).
    by_key = {k: runs["run_id"].tolist() for k in keys if f"metrics.{k}" in runs}
    rows: list[tuple[str, str, int, float, int]] | None = None
    if use_bulk and has_bulk_history(client):
        rows = _sql_bulk(_store(client), by_key)
    elif use_bulk and callable(getattr(_store(client), "get_host_creds", None)):
        rows = _rest_bulk(client, by_key, workers)
    if rows is None:
        pairs = [(rid, k) for k, ids in by_key.items() for rid in ids]
        rows = _per_run(client, pairs, workers)
    return pd.DataFrame(rows, columns=["run_id", "key", "step", "value", "timestamp"])


def _sql_bulk(store: Any, by_key: dict[str, list[str]]) -> list[tuple[str, str, int, float, int]]:
    """All wanted metrics of a chunk of runs per SELECT, on MLflow's own table model; plain tuples, because
    building an MLflow entity per point costs seconds at 100k points."""
    from mlflow.store.tracking.dbmodels.models import SqlMetric
    from sqlalchemy import select

    run_ids = sorted({rid for ids in by_key.values() for rid in ids})
    columns = (SqlMetric.run_uuid, SqlMetric.key, SqlMetric.step, SqlMetric.value, SqlMetric.timestamp)
    rows: list[tuple[str, str, int, float, int]] = []
    with store.ManagedSessionMaker() as session:
        for i in range(0, len(run_ids), BULK_CHUNK):
            query = select(*columns, SqlMetric.is_nan).where(
                SqlMetric.key.in_(list(by_key)), SqlMetric.run_uuid.in_(run_ids[i : i + BULK_CHUNK])
            )
            # MLflow stores NaN as value 0 with is_nan set.
            rows += [(r, k, s, math.nan if nan else v, t) for r, k, s, v, t, nan in session.execute(query)]
    return rows


def _rest_bulk(
    client: Any, by_key: dict[str, list[str]], workers: int
) -> list[tuple[str, str, int, float, int]] | None:
    """Histories through the server's bulk endpoint (the one MLflow's UI charts use, one SQL query per
    request); None when the server refuses it, so the caller falls back to the documented per-run calls."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.rest_utils import http_request_safe

    def fetch(job: tuple[str, list[str]]) -> list[tuple[str, str, int, float, int]]:
        key, ids = job
        params = {"run_id": ids, "metric_key": key, "max_results": REST_POINTS}
        answer = http_request_safe(_store(client).get_host_creds(), REST_BULK, "GET", params=params)
        metrics = answer.json().get("metrics", [])
        if len(metrics) >= REST_POINTS:  # the server cut the answer short: ask for halves, or one run whole
            if len(ids) == 1:
                return _per_run(client, [(ids[0], key)], 1)
            return fetch((key, ids[: len(ids) // 2])) + fetch((key, ids[len(ids) // 2 :]))
        return [(m["run_id"], key, int(m["step"]), float(m["value"]), int(m["timestamp"])) for m in metrics]

    jobs = [(k, ids[i : i + REST_RUNS]) for k, ids in by_key.items() for i in range(0, len(ids), REST_RUNS)]
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return [row for rows in pool.map(fetch, jobs) for row in rows]
    except MlflowException:
        return None


def _per_run(
    client: Any, pairs: list[tuple[str, str]], workers: int
) -> list[tuple[str, str, int, float, int]]:
    rows: list[tuple[str, str, int, float, int]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        histories = pool.map(lambda pair: client.get_metric_history(*pair), pairs)
        for (rid, k), metrics in zip(pairs, histories, strict=True):
            rows.extend((rid, k, m.step, m.value, m.timestamp) for m in metrics)
    return rows


# --------------------------------------------------------------------------------------------- content
TWO_SEEDS = "†"
TWO_SEED_NOTE = (
    "† computed from 2 seeds (of the configuration, or of either side of a difference): treat it as "
    "uninformative. A t interval of a mean over 2 seeds has 1 degree of freedom and reaches 12.7 standard "
    "errors either side of the mean."
)


def _seconds(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:,.1f} s" if value < 120 else f"{value:,.0f} s ({value / 60:,.1f} min)"


def _display_table(
    table: pd.DataFrame, key_cols: list[str], metrics: list[str], labels: dict[str, str] | None = None
) -> pd.DataFrame:
    """Formats a summary table: key columns as values, each metric as ``mean ± CI`` under its unit label
    (or ``labels[metric]``), an interval from 2 seeds marked †."""
    out = pd.DataFrame({})
    for c in key_cols:
        names = rd.display_labels(table[c])
        out[c] = [names[rd.format_value(v)] for v in table[c]]
    two = (table["n"] == 2).to_numpy() if "n" in table else np.zeros(len(table), dtype=bool)
    for m in metrics:
        if f"{m}_mean" in table:
            spec = rd.metric_spec(m)
            rows = zip(table[f"{m}_mean"], table[f"{m}_ci"], two, strict=True)
            out[(labels or {}).get(m, spec.label)] = [
                rd.format_mean_ci(mean, half, spec) + (f" {TWO_SEEDS}" if mark and np.isfinite(half) else "")
                for mean, half, mark in rows
            ]
    return out


def _metric_order(metric: str, trials: pd.DataFrame) -> list[str]:
    """The sweep's metric, its test-split figure beside it, then the other known metrics (test beside val)."""
    order = [metric, f"test_{metric}"] + [s.key for s in rd.METRIC_SPECS]
    return [m for m in dict.fromkeys(order) if m in trials.columns or m == metric]


def collapse_threshold(runs: pd.DataFrame, info: rd.SweepInfo) -> tuple[float, str] | None:
    """RankMe's collapse line, ``eval.collapse_threshold`` × ``model.embed_dim``, when all trials share it."""
    params = rd.cast_params(rd.trial_runs(runs, info.parent_run_id))
    if not {"eval.collapse_threshold", "model.embed_dim"} <= set(params.columns):
        return None
    line = (params["eval.collapse_threshold"] * params["model.embed_dim"]).dropna().unique()
    return (float(line[0]), f"collapse threshold ({line[0]:g})") if len(line) == 1 else None


def _diff_cells(board: pd.DataFrame, metric: str) -> list[str]:
    """``+2.10 [+1.00, +3.20]`` per row (best minus this, display scale), ``best`` on the best row, † where
    either side has 2 seeds."""
    spec = rd.metric_spec(metric)
    best_two = bool(len(board)) and board["n"].iloc[0] == 2
    adjusted = board[f"{metric}_seed_adjusted"].to_numpy(dtype=float)
    cells = []
    for i, row in enumerate(board.itertuples(index=False)):
        if i == 0 and np.isfinite(adjusted[0]):
            cells.append("best")
        elif row.n == 0 or not np.isfinite(adjusted[0]):  # nothing ran, or no comparison at all
            cells.append("–")
        elif np.isnan(row.diff_vs_best):
            cells.append("not compared")
        elif np.isnan(row.diff_ci_low):
            cells.append(f"{row.diff_vs_best * spec.scale:+,.{spec.decimals}f}")
        else:
            lo, hi = (f"{v * spec.scale:+,.{spec.decimals}f}" for v in (row.diff_ci_low, row.diff_ci_high))
            mark = f" {TWO_SEEDS}" if row.n == 2 or best_two else ""
            cells.append(f"{row.diff_vs_best * spec.scale:+,.{spec.decimals}f} [{lo}, {hi}]{mark}")
    return cells


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _notes(board: pd.DataFrame) -> list[str]:
    notes = []
    for row in board.itertuples(index=False):
        parts = [f"{row.failed} of {row.trials} seeds failed"] if row.failed else []
        parts += [f"{row.stopped_early} stopped early"] if row.stopped_early else []
        parts += [f"{row.legacy_apart} logged before validation splits"] if row.legacy_apart else []
        parts += [f"{row.collapsed} collapsed"] if row.collapsed else []
        notes.append("; ".join(parts))
    return notes


class _Composer:
    """Builds the report's :class:`Doc` section by section, writing plots into ``out`` on the way."""

    def __init__(
        self,
        info: rd.SweepInfo,
        trials: pd.DataFrame,
        history: pd.DataFrame,
        out: Path,
        rankme_line: tuple[float, str] | None,
    ) -> None:
        self.info, self.trials, self.history = info, trials, history
        self.out, self.rankme_line = out, rankme_line
        self.metrics = _metric_order(info.metric, trials)
        self.test_split = rd.ranks_test_split(trials)
        # An old sweep's probe_acc/knn_acc were scored on the test split: every header says so.
        self.labels = {
            m: f"{rd.metric_spec(m).name}, test split ({rd.metric_spec(m).unit})"
            for m in ("probe_acc", "knn_acc")
            if self.test_split
        }
        self.doc = Doc()

    def header(self) -> None:
        info, trials = self.info, self.trials
        outcomes = trials["outcome"].value_counts()
        completed, stopped = int(outcomes.get("completed", 0)), int(outcomes.get("stopped early", 0))
        failed = int(outcomes.get("failed", 0))
        durations = trials["duration_s"].to_numpy(dtype=float)
        durations = durations[np.isfinite(durations)]
        span = (trials["end_time"].max() - trials["start_time"].min()).total_seconds()
        mean, half, _ = rs.t_interval(durations)
        median = _seconds(float(np.median(durations))) if len(durations) else "–"
        started = f"{info.start_time:%Y-%m-%d %H:%M UTC}" if info.start_time is not None else "unknown"
        devices = ", ".join(
            f"`{d}` ×{n}" for d, n in trials["device"].fillna("unknown").value_counts().items()
        )
        seeds = ", ".join(str(s) for s in sorted(trials["seed"].dropna().unique())) or "unknown"
        swept = ", ".join(f"`{p}`" for p in info.swept_params) or "nothing (seeds only)"
        self.doc.heading(1, f"Sweep report: {info.name}")
        self.doc.bullets([
            f"Sweep `{info.name}`, parent run `{info.parent_run_id}` ({info.status or 'unknown'})",
            f"Started {started}; report built {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"Git SHA `{info.git_sha or 'unknown'}`",
            f"Machine: host `{info.host or 'unknown'}`, device `{info.device or 'unknown'}`; trials ran on "
            f"{devices}. Every time and throughput below was measured there.",
            f"Metric `{info.metric}` ({info.goal}); swept: {swept}; seeds: {seeds}",
            self._split_line(),
            f"Trials: {len(trials)} — {completed} ran to their last epoch, {stopped} stopped early by the "
            f"scheduler, {failed} failed, {len(trials) - completed - stopped - failed} running or killed; "
            f"{int(trials['collapsed'].sum())} flagged collapsed",
            f"Wall time: {_seconds(span)} from first trial start to last trial end; "
            f"{_seconds(float(durations.sum()))} of trial time in all; per trial "
            f"{rd.format_mean_ci(mean, half, rd.metric_spec('duration_s'), unit=True)} "
            f"(mean ± 95% CI; median {median})",
        ])  # fmt: skip

    def _split_line(self) -> str:
        if self.test_split:
            return f"Splits: {rd.LEGACY_SPLIT_NOTE}; the ranking below chooses on the test split"
        text = "Splits: `probe_acc` and `knn_acc` on the validation split (tag `jepa.metrics_version` ≥ 2)"
        apart = int(((self.trials["outcome"] == "completed") & ~self.trials["ranked"]).sum())
        if apart:
            text += (
                f"; {apart} completed trials have {rd.LEGACY_SPLIT_NOTE} and are kept out of the ranking "
                "(listed under “Trials logged before validation splits”)"
            )
        return text

    def leaderboard(self) -> None:
        info, trials = self.info, self.trials
        board = rd.leaderboard(trials, info, self.metrics)
        board.to_csv(self.out / "leaderboard.csv", index=False)
        spec = rd.metric_spec(info.metric)
        names = dict(zip(trials["config_id"].map(rd.format_value), trials["config"], strict=True))
        verdict = rd.compare_best(
            trials, trials["config_id"], info.metric, info.goal, "configuration", names, power=True
        )
        test = verdict.result.test if verdict else rs.TEST_NAME
        if verdict is None or verdict.result.blocked:
            order = (
                "seed-adjusted mean (`score ~ configuration + seed` fitted by least squares: the plain mean "
                "when every configuration has every seed)"
            )
        else:
            order = "mean (no seeds were logged, so nothing is adjusted for them)"
        ranked = "the trials that ran to their last epoch"
        if ((trials["outcome"] == "completed") & ~trials["ranked"]).any():
            ranked += " with validation-split metrics"
        self.doc.heading(2, "Leaderboard")
        self.doc.para(
            f"Configurations ranked by `{info.metric}` ({info.goal}), best first by {order}. Metric columns: "
            f"mean ± 95% CI over seeds (t distribution) of {ranked}; `seeds` counts those / all trials of "
            "the configuration, and the other trials are in no mean (they are listed below). `best − this`: "
            "the best's ranking mean minus this configuration's, with its simultaneous 95% interval, and "
            f"`adj. p` its adjusted p-value, by {test}. ⚠ marks a configuration with a failed seed: its "
            "figures are over the seeds that survived, which may flatter it."
        )
        keys = list(info.swept_params) or ["config_id"]
        top = board.head(LEADERBOARD_ROWS)
        shown = _display_table(top, ["rank", *keys], self.metrics, self.labels)
        shown["rank"] = [f"{r} ⚠" if f else str(r) for r, f in zip(top["rank"], top["failed"], strict=True)]
        shown.insert(len(keys) + 1, "seeds", top["seeds"].to_numpy())
        adjusted, plain = top[f"{info.metric}_seed_adjusted"], top.get(f"{info.metric}_mean")
        if plain is not None and ((adjusted - plain).abs() > 1e-12).any():  # a missing cell moved a mean
            label = self.labels.get(info.metric, spec.label)
            shown.insert(
                shown.columns.get_loc(label) + 1,
                f"{spec.name}, seed-adjusted ({spec.unit})" if spec.unit else f"{spec.name}, seed-adjusted",
                [rd.format_mean_ci(v, math.nan, spec) for v in adjusted],
            )
        unit = "points" if spec.unit == "%" else spec.unit
        shown[f"best − this ({unit})"] = _diff_cells(top, info.metric)
        shown["adj. p"] = [rd.format_p(p) if np.isfinite(p) else "" for p in top["p_vs_best_adjusted"]]
        shown["distinguishable"] = [
            "" if pd.isna(d) else ("yes" if d else "no") for d in top["distinguishable_from_best"]
        ]
        shown["notes"] = _notes(top)
        self.doc.table(shown)
        if len(board) > LEADERBOARD_ROWS:
            self.doc.para(
                f"Top {LEADERBOARD_ROWS} of {len(board)} configurations; all are in `leaderboard.csv`."
            )
        if verdict is not None:
            self.doc.para(verdict.sentence)
        if any(TWO_SEEDS in cell for column in shown.columns for cell in shown[column]):
            self.doc.para(TWO_SEED_NOTE)
        tests = [m for m in self.metrics if m.startswith("test_")]
        if self.test_split:
            self.doc.para(
                f"{rd.LEGACY_SPLIT_NOTE}: this ranking chooses on the test split, so the best "
                "configuration's figure is optimistically biased (it was chosen on the split it is reported "
                "on)."
            )
        elif tests:
            self.doc.para(
                ", ".join(f"`{m}`" for m in tests)
                + " (the `test` columns) are scored once on the test split at the last epoch; they are shown "
                "beside the validation figures and were not used to rank or choose."
            )
        if len(info.swept_params) > 1:
            self.together(board)

    def parameter(self, param: str) -> None:
        info, trials = self.info, self.trials
        self.doc.heading(2, f"Parameter `{param}`")
        levels = rd.param_levels(trials, param)
        table = rd.parameter_table(trials, param, self.metrics)
        note = "Mean ± 95% CI over seeds (t distribution) of the trials that ran to their last epoch"
        note += "; `n` counts them"
        others = [p for p in info.swept_params if p != param]
        if others:
            note += ", pooled over " + ", ".join(f"`{p}`" for p in others)
        if levels.map(rd.format_value).nunique() < trials[param].map(rd.format_value).nunique():
            note += f"; the {trials[param].nunique()} sampled values are grouped into quantile bins"
        self.doc.para(note + ".")
        shown = _display_table(table, [param, "n"], self.metrics, self.labels)
        self.doc.table(shown)
        names = rd.display_labels(table[param])
        verdict = rd.compare_best(
            trials,
            levels,
            info.metric,
            info.goal,
            f"`{param}` =",
            names,
            pooled=tuple(others),
            count="trials",
        )
        self.doc.para(
            verdict.sentence if verdict else f"Only one value of `{param}` finished: nothing to compare."
        )
        if any(TWO_SEEDS in cell for column in shown.columns for cell in shown[column]):
            self.doc.para(TWO_SEED_NOTE)
        slug = re.sub(r"[^A-Za-z0-9]+", "_", param)
        shown_metrics = [m for m in ("probe_acc", "knn_acc", "rankme", "train_loss") if m in trials]
        path = rp.plot_metric_vs_param(
            table, param, shown_metrics or [info.metric], self.out / f"{slug}_metrics.png"
        )
        self.doc.image(path, f"Metrics vs {param} (mean ± 95% CI over seeds)")
        order, seeds = [rd.format_value(v) for v in table[param]], rd.per_seed(trials, levels, info.metric)
        texts = rd.seed_note(seeds, param, info.metric, tuple(others))
        if texts is not None:
            label, path = self.labels.get(info.metric), self.out / f"{slug}_seeds.png"
            self.doc.image(rp.plot_per_seed(seeds, order, names, param, info.metric, path, label), texts[0])
            self.doc.para(texts[1])
        self.curves(levels, order, param, slug, names)

    def curves(
        self, by: pd.Series, order: list[str], name: str, slug: str, names: dict[str, str] | None = None
    ) -> None:
        if self.history.empty:
            self.doc.para("No per-epoch metric history was logged: no learning curves.")
            return
        # Per epoch the loss is the training loss, not the final value the tables show.
        specs = [replace(rd.metric_spec(k), name="train loss") if k == "train_loss" else rd.metric_spec(k)
                 for k in HISTORY_KEYS]  # fmt: skip
        panels = [(spec, rd.learning_curves(self.history, self.trials, spec.key, by)) for spec in specs]
        panels = [(spec, curve) for spec, curve in panels if not curve.empty]
        learning = [(spec, curve) for spec, curve in panels if spec.key != "rankme"]
        if learning:
            title = f"Learning curves by {name} (mean over seeds, 95% CI band)"
            path = self.out / f"{slug}_learning.png"
            self.doc.image(rp.plot_curves(learning, order, name, title, path, names=names), title)
        rankme = [(spec, curve) for spec, curve in panels if spec.key == "rankme"]
        if rankme:
            title = f"RankMe by {name} (a fall toward 0 means representation collapse)"
            collapsed = set(self.trials.loc[self.trials["collapsed"], "run_id"])
            rows = self.history[(self.history["key"] == "rankme") & self.history["run_id"].isin(collapsed)]
            singles = [(g["step"].to_numpy(), g["value"].to_numpy()) for _, g in rows.groupby("run_id")]
            path = self.out / f"{slug}_rankme.png"
            plot = rp.plot_curves(rankme, order, name, title, path, self.rankme_line, singles, names)
            self.doc.image(plot, title)

    def together(self, board: pd.DataFrame) -> None:
        info, params = self.info, list(self.info.swept_params)
        self.doc.heading(3, "All swept parameters together")
        path = rp.plot_parallel(board, params, info.metric, self.out / "parallel_coordinates.png")
        self.doc.image(path, "Parallel coordinates of the configurations")
        importance = rd.param_importance(self.trials, params, info.metric)
        if not importance.values:
            self.doc.para(f"Parameter importance: absent — {importance.note}.")
            return
        if importance.note:
            self.doc.para(f"Parameter importance: {importance.note}.")
        self.doc.para(
            f"Parameter importance for `{info.metric}` ({importance.method}): the mean over "
            f"{importance.resamples} bootstrap resamples of the trials that ran to their last epoch (each "
            "resample averaged per configuration, then decomposed; each fit normalized to sum 1), with the "
            "5th to 95th percentile of the resamples."
        )
        values = importance.values
        self.doc.table(pd.DataFrame({
            "parameter": list(values),
            "importance (mean)": [f"{v:.3f}" for v in values.values()],
            "5–95% of resamples": [f"{importance.low[p]:.3f} – {importance.high[p]:.3f}" for p in values],
        }))  # fmt: skip
        path = rp.plot_importance(importance, info.metric, self.out / "param_importance.png")
        self.doc.image(path, "Parameter importance")

    def stopped_early(self) -> None:
        stopped = self.trials[self.trials["outcome"] == "stopped early"]
        if stopped.empty:
            return
        info, spec = self.info, rd.metric_spec(self.info.metric)
        self.doc.heading(2, "Trials stopped early by the scheduler")
        self.doc.para(
            f"The scheduler stopped {_count(len(stopped), 'trial')} before the last epoch. A stopped "
            "trial's figures are from an earlier epoch than the completed trials', so they are in no mean, "
            "interval or test above; it counts against its configuration's `seeds`."
        )
        reached = rd.epochs_reached(self.history)
        epochs = [
            f"{reached.get(r, '–')} of {p if pd.notna(p) else '?'}"
            for r, p in zip(stopped["run_id"], stopped["planned_epochs"], strict=True)
        ]
        values = stopped[info.metric] if info.metric in stopped else pd.Series(np.nan, index=stopped.index)
        self.doc.table(pd.DataFrame({
            "run id": stopped["run_id"].to_numpy(),
            "configuration": stopped["config"].to_numpy(),
            "seed": stopped["seed"].astype(str).to_numpy(),
            "epoch reached": epochs,
            f"{self.labels.get(info.metric, spec.label)}, last logged": [
                rd.format_mean_ci(v, math.nan, spec) for v in values
            ],
        }))  # fmt: skip

    def legacy_apart(self) -> None:
        apart = self.trials[(self.trials["outcome"] == "completed") & ~self.trials["ranked"]]
        if apart.empty:
            return
        spec = rd.metric_spec(self.info.metric)
        self.doc.heading(2, "Trials logged before validation splits")
        self.doc.para(
            f"Trials without a `jepa.metrics_version` tag ≥ 2 ({_count(len(apart), 'trial')}): "
            f"{rd.LEGACY_SPLIT_NOTE}. The "
            "ranking above is on the validation split, so they are left out of it and of every table and "
            "test above; each still counts in its configuration's `seeds`."
        )
        values = (
            apart[self.info.metric] if self.info.metric in apart else pd.Series(np.nan, index=apart.index)
        )
        self.doc.table(pd.DataFrame({
            "run id": apart["run_id"].to_numpy(),
            "configuration": apart["config"].to_numpy(),
            "seed": apart["seed"].astype(str).to_numpy(),
            f"{spec.name}, test split ({spec.unit})" if spec.unit else f"{spec.name}, test split": [
                rd.format_mean_ci(v, math.nan, spec) for v in values
            ],
        }))  # fmt: skip

    def failures(self) -> None:
        self.doc.heading(2, "Failed and collapsed trials")
        bad = self.trials[(self.trials["status"] != "FINISHED") | self.trials["collapsed"]]
        if bad.empty:
            self.doc.para("None: every trial finished and none was flagged as collapsed.")
            return
        if (bad["outcome"] == "failed").any():
            self.doc.para(
                "A failed trial counts against its configuration: the leaderboard's `seeds` shows fewer "
                "complete seeds than it ran, and its row is marked ⚠."
            )
        # The last line of a traceback names the error; the whole text stays in MLflow and trials.csv.
        reasons = [
            r.strip().splitlines()[-1][:200] if isinstance(r, str) and r.strip() else ""
            for r in bad["failure_reason"]
        ]
        self.doc.table(pd.DataFrame({
            "run id": bad["run_id"].to_numpy(),
            "configuration": bad["config"].to_numpy(),
            "seed": bad["seed"].astype(str).to_numpy(),
            "status": bad["status"].to_numpy(),
            "collapsed": np.where(bad["collapsed"], "yes (RankMe flag)", "no"),
            "reason": reasons,
        }))  # fmt: skip


def compose_report(
    info: rd.SweepInfo,
    trials: pd.DataFrame,
    history: pd.DataFrame,
    out: Path,
    rankme_line: tuple[float, str] | None = None,
) -> Doc:
    """The whole report as a :class:`Doc`; plots and ``leaderboard.csv`` are written into ``out``."""
    composer = _Composer(info, trials, history, out, rankme_line)
    composer.header()
    composer.leaderboard()
    for param in info.swept_params:
        composer.parameter(param)
    if not info.swept_params:
        composer.curves(trials["config"], ["default"], "configuration", "curves")
    composer.stopped_early()
    composer.legacy_apart()
    composer.failures()
    composer.doc.heading(2, "Files")
    composer.doc.para(
        "`trials.csv` (one row per trial), `leaderboard.csv` and the plots sit next to this report."
    )
    return composer.doc


# --------------------------------------------------------------------------------------------- building
def _stamped_dir(root: Path, sweep: str) -> Path:
    """``root/<sweep>/<YYYYmmdd-HHMMSS>``, suffixed ``-2``, ``-3``... when built twice in one second."""
    base = Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "_", sweep) / datetime.now().strftime("%Y%m%d-%H%M%S")
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    path.mkdir(parents=True)
    return path


def build_report_from_frames(
    runs: pd.DataFrame, history: pd.DataFrame | None, out_dir: str | Path, parent_run_id: str | None = None
) -> Path:
    """Writes a report from a search_runs frame (parent + trials) and a long history frame; no MLflow needed.

    Returns:
        The stamped report directory under ``out_dir/<sweep>/``.
    """
    info = rd.sweep_info(runs, parent_run_id)
    trials = rd.trials_frame(runs, info)
    if trials.empty:
        raise ReportInputError(f"parent run {info.parent_run_id} has no trial runs")
    empty = pd.DataFrame(columns=["run_id", "key", "step", "value"])
    tidy = rd.tidy_history(history if history is not None and not history.empty else empty)
    out = _stamped_dir(Path(out_dir), info.name)
    doc = compose_report(info, trials, tidy, out, collapse_threshold(runs, info))
    csv = trials.assign(
        start_time=trials["start_time"].map(lambda t: t.isoformat() if pd.notna(t) else ""),
        end_time=trials["end_time"].map(lambda t: t.isoformat() if pd.notna(t) else ""),
    )
    csv.to_csv(out / "trials.csv", index=False)
    (out / "report.md").write_text(doc.to_markdown(), encoding="utf-8")
    (out / "report.html").write_text(doc.to_html(f"Sweep report: {info.name}"), encoding="utf-8")
    return out


def _check_store_exists(tracking_uri: str) -> None:
    # MLflow would silently create an empty database at a mistyped sqlite path.
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri[len("sqlite:///") :])
        if not path.is_file():
            raise ReportInputError(f"no MLflow database at {path} (tracking URI {tracking_uri})")


def build_sweep_report(
    tracking_uri: str,
    experiment: str,
    parent_run_id: str | None,
    out_dir: str | Path,
    *,
    require_upload: bool = False,
) -> Path:
    """Builds a sweep's report from MLflow alone, logs it as the parent run's ``report`` artifacts, and puts
    the sweep's answer on the parent run (:func:`orchestrator.tracking.ui.log_answer`: best-configuration
    metrics, verdict tags, the leaderboard table and the run's note).

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///...``, ``http://...``, ...).
        experiment: Experiment name (= sweep name).
        parent_run_id: The sweep's parent run; None picks the experiment's latest ``jepa.role=sweep`` run.
        out_dir: Reports root, e.g. ``./reports``.
        require_upload: The sweep driver's choice: a report MLflow could not take is an error to resume from.

    Returns:
        The stamped report directory ``out_dir/<sweep>/<stamp>``.

    Raises:
        ReportInputError: unknown experiment, bad run id, or no trial runs.
        tracking.TrackingUnavailable: the store did not answer within the outage bound (reads are retried
            until then). With ``require_upload``, also when the report was written but could not be logged;
            without it, that is a warning and the report on disk is returned.
    """
    _check_store_exists(tracking_uri)
    client = tracking.client(tracking_uri)  # every call retried through a short outage
    runs, parent_id = fetch_runs(client, experiment, parent_run_id)
    history = fetch_histories(client, runs[runs["run_id"] != parent_id], HISTORY_KEYS)
    out = build_report_from_frames(runs, history, out_dir, parent_id)
    try:
        client.log_artifacts(parent_id, str(out), "report")
        mlflow_ui.log_answer(client, runs, parent_id, str(out))
    except tracking.TrackingUnavailable as exc:
        if require_upload:
            raise tracking.TrackingUnavailable(f"the report is written at {out}, not logged: {exc}") from exc
        print(f"orchestrator.report: warning: could not log {out} to run {parent_id}: {exc}", file=sys.stderr)
    except Exception as exc:  # the report on disk is still complete; say why MLflow lacks a copy
        print(f"orchestrator.report: warning: could not log {out} to run {parent_id}: {exc}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 2 bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.report", description="Build a sweep comparison report from MLflow alone."
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name (= sweep name)")
    parser.add_argument("--run-id", default=None, help="sweep parent run id (default: the latest)")
    parser.add_argument("--out", default="reports", help="reports root (default: ./reports)")
    parser.add_argument(
        "--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db"
    )
    args = parser.parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri)
    from mlflow.exceptions import MlflowException

    from orchestrator.tracking.store import StoreError, check_writable, prepare_store

    try:
        # A report only reads the store: a missing database is not created (build_sweep_report says so),
        # and an existing one is opened under the lock a sweep creating it holds, and refused when old.
        prepare_store(uri, create=False)
        check_writable(Path(args.out), "--out")
        path = build_sweep_report(uri, args.experiment, args.run_id, args.out)
    except (ReportInputError, StoreError) as exc:
        print(f"orchestrator.report: {exc}", file=sys.stderr)
        return 2
    except tracking.TrackingUnavailable as exc:  # retried up to the outage bound first
        print(f"orchestrator.report: {tracking.one_line(exc)}", file=sys.stderr)
        return 1
    except MlflowException as exc:
        where = tracking.redact_uri(uri)
        print(f"orchestrator.report: MLflow at {where}: {tracking.one_line(exc.message)}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
