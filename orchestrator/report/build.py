"""Builds a report folder: ``<out>/<sweep>/<stamp>/{report.md, report.html, trials.csv, leaderboard.csv,
*.png}`` from a sweep's frames (:func:`build_report_from_frames`) or from MLflow alone
(:func:`build_sweep_report`, which also logs the folder and the sweep's answer onto the parent run).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

from orchestrator.report.compose import compose_report
from orchestrator.report.fetch import ReportInputError, check_store_exists, fetch_histories, fetch_runs
from orchestrator.report.frames import collapse_threshold, sweep_info, tidy_history, trials_frame
from orchestrator.tracking import runs as tracking
from orchestrator.tracking import ui as mlflow_ui
from orchestrator.tracking.history import HISTORY_KEYS


def stamped_dir(root: Path, sweep: str) -> Path:
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
    info = sweep_info(runs, parent_run_id)
    trials = trials_frame(runs, info)
    if trials.empty:
        raise ReportInputError(f"parent run {info.parent_run_id} has no trial runs")
    empty = pd.DataFrame(columns=["run_id", "key", "step", "value"])
    tidy = tidy_history(history if history is not None and not history.empty else empty)
    out = stamped_dir(Path(out_dir), info.name)
    doc = compose_report(info, trials, tidy, out, collapse_threshold(runs, info))
    csv = trials.assign(
        start_time=trials["start_time"].map(lambda t: t.isoformat() if pd.notna(t) else ""),
        end_time=trials["end_time"].map(lambda t: t.isoformat() if pd.notna(t) else ""),
    )
    csv.to_csv(out / "trials.csv", index=False)
    (out / "report.md").write_text(doc.to_markdown(), encoding="utf-8")
    (out / "report.html").write_text(doc.to_html(f"Sweep report: {info.name}"), encoding="utf-8")
    return out


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
    check_store_exists(tracking_uri)
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
