"""Sweep comparison reports: which setting won, and whether the difference is real.

Reads a sweep's parent run and trial runs back from MLflow (nothing else), turns them into tidy frames with
:mod:`orchestrator.report_data`, draws :mod:`orchestrator.report_plots`, and writes
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

from orchestrator import report_data as rd
from orchestrator import report_plots as rp
from orchestrator import tracking
from orchestrator.report_plots import Doc

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
    resolution (:func:`orchestrator.tracking.resolve_tracking_uri`) without a sweep file."""
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
def _seconds(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:,.1f} s" if value < 120 else f"{value:,.0f} s ({value / 60:,.1f} min)"


def _display_table(table: pd.DataFrame, key_cols: list[str], metrics: list[str]) -> pd.DataFrame:
    """Formats a summary table: key columns as values, each metric as ``mean ± CI`` under its unit label."""
    out = pd.DataFrame({})
    for c in key_cols:
        names = rd.display_labels(table[c])
        out[c] = [names[rd.format_value(v)] for v in table[c]]
    for m in metrics:
        if f"{m}_mean" in table:
            spec = rd.metric_spec(m)
            pairs = zip(table[f"{m}_mean"], table[f"{m}_ci"], strict=True)
            out[spec.label] = [rd.format_mean_ci(mean, half, spec) for mean, half in pairs]
    return out


def collapse_threshold(runs: pd.DataFrame, info: rd.SweepInfo) -> tuple[float, str] | None:
    """RankMe's collapse line, ``eval.collapse_threshold`` × ``model.embed_dim``, when all trials share it."""
    params = rd.cast_params(rd.trial_runs(runs, info.parent_run_id))
    if not {"eval.collapse_threshold", "model.embed_dim"} <= set(params.columns):
        return None
    line = (params["eval.collapse_threshold"] * params["model.embed_dim"]).dropna().unique()
    return (float(line[0]), f"collapse threshold ({line[0]:g})") if len(line) == 1 else None


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
        self.metrics = [info.metric] + [s.key for s in rd.METRIC_SPECS if s.key != info.metric]
        self.doc = Doc()

    def header(self) -> None:
        info, trials = self.info, self.trials
        counts = trials["status"].value_counts()
        finished, failed = int(counts.get("FINISHED", 0)), int(counts.get("FAILED", 0))
        durations = trials["duration_s"].to_numpy(dtype=float)
        durations = durations[np.isfinite(durations)]
        span = (trials["end_time"].max() - trials["start_time"].min()).total_seconds()
        mean, half, _ = rd.t_interval(durations)
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
            f"Trials: {len(trials)} — {finished} finished, {failed} failed, "
            f"{len(trials) - finished - failed} running or killed; "
            f"{int(trials['collapsed'].sum())} flagged collapsed",
            f"Wall time: {_seconds(span)} from first trial start to last trial end; "
            f"{_seconds(float(durations.sum()))} of trial time in all; per trial "
            f"{rd.format_mean_ci(mean, half, rd.metric_spec('duration_s'), unit=True)} "
            f"(mean ± 95% CI; median {median})",
        ])  # fmt: skip

    def leaderboard(self) -> None:
        info, trials = self.info, self.trials
        board = rd.leaderboard(trials, info, self.metrics)
        board.to_csv(self.out / "leaderboard.csv", index=False)
        self.doc.heading(2, "Leaderboard")
        self.doc.para(
            f"Configurations ranked by `{info.metric}` ({info.goal}), seeds pooled: mean ± 95% CI over seeds "
            "(t distribution) of finished trials; `seeds` counts finished / all trials."
        )
        keys = list(info.swept_params) or ["config_id"]
        top = board.head(LEADERBOARD_ROWS)
        shown = _display_table(top, ["rank", *keys], self.metrics)
        shown.insert(
            len(keys) + 1, "seeds", [f"{n}/{t}" for n, t in zip(top["n"], top["trials"], strict=True)]
        )
        shown["collapsed"] = top["collapsed"].astype(str).to_numpy()
        self.doc.table(shown)
        if len(board) > LEADERBOARD_ROWS:
            self.doc.para(
                f"Top {LEADERBOARD_ROWS} of {len(board)} configurations; all are in `leaderboard.csv`."
            )
        verdict = rd.compare_best(trials, trials["config"], info.metric, info.goal, "configuration")
        if verdict is not None:
            self.doc.para(verdict.sentence)
        if len(info.swept_params) > 1:
            self.together(board)

    def parameter(self, param: str) -> None:
        info, trials = self.info, self.trials
        self.doc.heading(2, f"Parameter `{param}`")
        levels = rd.param_levels(trials, param)
        table = rd.parameter_table(trials, param, self.metrics)
        note = "Mean ± 95% CI over seeds (t distribution), finished trials; `n` counts trials"
        others = [f"`{p}`" for p in info.swept_params if p != param]
        if others:
            note += ", pooled over " + ", ".join(others)
        if levels.map(rd.format_value).nunique() < trials[param].map(rd.format_value).nunique():
            note += f"; the {trials[param].nunique()} sampled values are grouped into quantile bins"
        self.doc.para(note + ".")
        self.doc.table(_display_table(table, [param, "n"], self.metrics))
        names = rd.display_labels(table[param])
        verdict = rd.compare_best(trials, levels, info.metric, info.goal, f"`{param}` =", names)
        self.doc.para(
            verdict.sentence if verdict else f"Only one value of `{param}` finished: nothing to compare."
        )
        slug = re.sub(r"[^A-Za-z0-9]+", "_", param)
        shown = [m for m in ("probe_acc", "knn_acc", "rankme", "train_loss") if m in trials] or [info.metric]
        path = rp.plot_metric_vs_param(table, param, shown, self.out / f"{slug}_metrics.png")
        self.doc.image(path, f"Metrics vs {param} (mean ± 95% CI over seeds)")
        self.curves(levels, [rd.format_value(v) for v in table[param]], param, slug, names)

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
        if importance.note:
            self.doc.para(f"Parameter importance: {importance.note}.")
        if importance.values:
            column = f"importance for {info.metric} ({importance.method})"
            values = importance.values
            self.doc.table(
                pd.DataFrame({"parameter": list(values), column: [f"{v:.3f}" for v in values.values()]})
            )
            path = rp.plot_importance(importance, info.metric, self.out / "param_importance.png")
            self.doc.image(path, "Parameter importance")

    def failures(self) -> None:
        self.doc.heading(2, "Failed and collapsed trials")
        bad = self.trials[(self.trials["status"] != "FINISHED") | self.trials["collapsed"]]
        if bad.empty:
            self.doc.para("None: every trial finished and none was flagged as collapsed.")
            return
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
    tracking_uri: str, experiment: str, parent_run_id: str | None, out_dir: str | Path
) -> Path:
    """Builds a sweep's report from MLflow alone and logs it as the parent run's ``report`` artifacts.

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///...``, ``http://...``, ...).
        experiment: Experiment name (= sweep name).
        parent_run_id: The sweep's parent run; None picks the experiment's latest ``jepa.role=sweep`` run.
        out_dir: Reports root, e.g. ``./reports``.

    Returns:
        The stamped report directory ``out_dir/<sweep>/<stamp>``.

    Raises:
        ReportInputError: unknown experiment, bad run id, or no trial runs.
    """
    from mlflow import MlflowClient

    _check_store_exists(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    runs, parent_id = fetch_runs(client, experiment, parent_run_id)
    history = fetch_histories(client, runs[runs["run_id"] != parent_id], HISTORY_KEYS)
    out = build_report_from_frames(runs, history, out_dir, parent_id)
    try:
        client.log_artifacts(parent_id, str(out), "report")
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

    try:
        path = build_sweep_report(uri, args.experiment, args.run_id, args.out)
    except ReportInputError as exc:
        print(f"orchestrator.report: {exc}", file=sys.stderr)
        return 2
    except MlflowException as exc:
        where = tracking.redact_uri(uri)
        print(f"orchestrator.report: MLflow at {where}: {tracking.one_line(exc.message)}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
