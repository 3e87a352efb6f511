"""Reads a sweep back from MLflow, through its public client only: the runs as one frame, their histories.

:func:`fetch_runs` finds the sweep's parent run and its trial runs with ``MlflowClient.search_runs`` and
returns them as the frame ``mlflow.search_runs`` would. :func:`fetch_histories` takes the curves the report
draws from each trial's ``jepa.history`` tag (:mod:`orchestrator.tracking.history`), which the same search
returned, and reads the runs without a readable tag (logged before the tag existed, or whose curves outgrew
one tag value) metric by metric with ``MlflowClient.get_metric_history`` in a thread pool.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.tracking import history
from orchestrator.tracking import runs as tracking

HISTORY_WORKERS = 8  # concurrent get_metric_history calls: each is one round trip and one store query
HISTORY_COLUMNS = ["run_id", "key", "step", "value"]


class ReportInputError(ValueError):
    """Bad input (unknown experiment, bad run id, no runs); the message is one line."""


def resolve_tracking_uri(cli_uri: str | None = None) -> str:
    """``--tracking-uri`` > ``$MLFLOW_TRACKING_URI`` > ``sqlite:///<cwd>/mlflow.db``: the sweep's own
    resolution (:func:`orchestrator.tracking.runs.resolve_tracking_uri`) without a sweep file."""
    return tracking.resolve_tracking_uri(cli_uri, None)


def check_store_exists(tracking_uri: str) -> None:
    """Raises :class:`ReportInputError` for a ``sqlite:///`` URI whose file does not exist."""
    # MLflow would silently create an empty database at a mistyped sqlite path.
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri[len("sqlite:///") :])
        if not path.is_file():
            raise ReportInputError(f"no MLflow database at {path} (tracking URI {tracking_uri})")


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


def search_all_runs(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    """Every run of the experiment that matches ``filter_string``, page after page."""
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
    filter_string = f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    children = search_all_runs(client, exp.experiment_id, filter_string)
    if not children:
        raise ReportInputError(f"parent run {parent.info.run_id} of {experiment!r} has no trial runs")
    return runs_to_frame([parent, *children]), parent.info.run_id


def fetch_histories(
    client: Any,
    runs: pd.DataFrame,
    keys: Iterable[str],
    use_tags: bool = True,
    workers: int = HISTORY_WORKERS,
) -> pd.DataFrame:
    """Long frame (run_id, key, step, value) of the given metrics of every run, one value per step.

    Args:
        client: An :class:`mlflow.MlflowClient`, or the retrying one of :mod:`orchestrator.tracking.runs`.
        runs: A :func:`runs_to_frame` frame of the runs to read (with their ``tags.jepa.history`` column).
        keys: Metric keys; those in :data:`orchestrator.tracking.history.HISTORY_KEYS` come from the tag.
        use_tags: False reads every run metric by metric (the route of runs logged before the tag).
        workers: Threads for the per-run ``get_metric_history`` calls.
    """
    # Every run for every logged key: a last value of NaN may hide a logged NaN (a diverged trial).
    keys = [k for k in keys if f"metrics.{k}" in runs]
    rows: list[tuple[str, str, int, float]] = []
    pairs: list[tuple[str, str]] = []  # (run id, key) the tags could not answer
    tags = runs.get(f"tags.{history.HISTORY_TAG}") if use_tags else None
    for run_id, text in zip(runs["run_id"], tags if tags is not None else [None] * len(runs), strict=True):
        curves = history.decode(text if isinstance(text, str) else None)
        for key in keys:
            if curves is None or key not in history.HISTORY_KEYS:
                pairs.append((run_id, key))
            else:
                rows.extend((run_id, key, step, value) for step, value in curves.get(key, ()))
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    if pairs:
        read = metric_histories(client, pairs, workers)
        frame = pd.concat([frame, read], ignore_index=True) if rows else read
    return frame.astype({"step": "int64", "value": "float64"})


def metric_histories(
    client: Any, pairs: list[tuple[str, str]], workers: int = HISTORY_WORKERS
) -> pd.DataFrame:
    """``get_metric_history`` of each (run id, key), in a thread pool, as a (run_id, key, step, value) frame.

    A retried epoch logs its step twice: the value with the later timestamp is kept, so the frame holds one
    value per step like the tag route's.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        histories = list(pool.map(lambda pair: client.get_metric_history(*pair), pairs))
    rows = [
        (run_id, key, m.step, m.value, m.timestamp)
        for (run_id, key), metrics in zip(pairs, histories, strict=True)
        for m in metrics
    ]
    frame = pd.DataFrame(rows, columns=[*HISTORY_COLUMNS, "timestamp"]).sort_values(
        "timestamp", kind="stable"
    )
    frame = frame.drop_duplicates(["run_id", "key", "step"], keep="last")
    return frame[HISTORY_COLUMNS].reset_index(drop=True)
