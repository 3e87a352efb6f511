"""MLflow records of the nightly benchmark: one run per night in experiment ``nightly``.

Tags say what a reader needs to trust a number and what the baseline query filters on:
``jepa.role=nightly``, ``jepa.nightly.device`` (device kind), ``jepa.nightly.smoke`` (true/false),
``jepa.nightly.suite`` (fingerprint of what was measured), ``jepa.nightly.status`` (ok/regression, set when
the night ends), ``jepa.nightly.inconclusive`` (timing metrics the machine moved too far to judge), the git
SHA, host and the torch, ray, mlflow and timm versions. Metrics are logged once per night (step 0) under their
section prefix, e.g. ``bench_cpu.img_per_s``, with each section's same-run matmul peak and the share of the
CPUs other processes used beside them (``quality.matmul_peak_gflops``, ``.matmul_peak_spread``,
``.other_cpu_share``).

All calls go through an explicit :class:`mlflow.MlflowClient` on the resolved URI (as the sweep does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jepa_core import machine
from orchestrator.tracking import runs as tracking

ROLE = "jepa.role"
DEVICE, SMOKE, SUITE = "jepa.nightly.device", "jepa.nightly.smoke", "jepa.nightly.suite"
STATUS, FAILURES = "jepa.nightly.status", "jepa.nightly.failures"
REGRESSED, BASELINE = "jepa.nightly.regressions", "jepa.nightly.baseline"
INCONCLUSIVE = "jepa.nightly.inconclusive"  # timing metrics the machine moved too far to judge (status ok)
RESET = "jepa.nightly.reset"  # "true": this night started a new baseline (--reset-baseline)
# What quality.probe_acc / knn_acc mean (tracking.runs.METRICS_VERSION): nights compare only within
# one version; nights without the tag scored them on the test split.
METRICS_VERSION = tracking.METRICS_VERSION
STATUS_OK, STATUS_REGRESSION = "ok", "regression"


@dataclass(frozen=True)
class PastNight:
    """One earlier night as read back from MLflow (tonight's own run is night.NightRun)."""

    run_id: str
    start: datetime
    status: str  # ok | regression | "" (never finished)
    metrics: dict[str, float]
    reset: bool = False  # started a new baseline: older nights do not count


def since_reset(nights: list[PastNight]) -> list[PastNight]:
    """``nights`` (newest first) down to the newest one that reset the baseline, inclusive."""
    for i, night in enumerate(nights):
        if night.reset:
            return nights[: i + 1]
    return nights


def environment_tags() -> dict[str, str]:
    """Git SHA, host, Python and the torch, ray, mlflow and timm versions."""
    return {**tracking.environment_tags(), "jepa.timm_version": machine.versions(("timm",))["timm"]}


def open_experiment(uri: str, name: str) -> str:
    """The experiment id of ``name``, created (or restored) when needed. Raises MlflowException."""
    client = tracking.client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, tags={ROLE: "nightly"})
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def start_night(
    uri: str, experiment_id: str, run_name: str, tags: dict[str, str], params: dict[str, Any]
) -> str:
    """Creates tonight's run (status RUNNING, no verdict tag yet: the baseline query cannot see it)."""
    from mlflow.entities import Param

    client = tracking.client(uri)
    run_id = client.create_run(experiment_id, run_name=run_name, tags={ROLE: "nightly", **tags}).info.run_id
    items = [Param(k, "null" if v is None else str(v)[:6000]) for k, v in sorted(params.items())]
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=items[i : i + 100])
    return run_id


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float]) -> None:
    """Logs tonight's finite metrics at step 0, in batches of at most 1000 (MLflow's limit)."""
    from mlflow.entities import Metric

    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items()) if math.isfinite(v)]
    client = tracking.client(uri)
    for i in range(0, len(batch), 1000):
        client.log_batch(run_id, metrics=batch[i : i + 1000])


def set_tags(uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    """Sets ``tags`` on the run, one call each."""
    client = tracking.client(uri)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def finish_night(
    uri: str, run_id: str, run_status: str, tags: Mapping[str, str], report_dir: Path | None
) -> None:
    """Logs the report folder as ``report/`` artifacts, sets the verdict tags, and ends the run."""
    client = tracking.client(uri)
    if report_dir is not None:
        client.log_artifacts(run_id, str(report_dir), "report")
    set_tags(uri, run_id, tags)
    client.set_terminated(run_id, status=run_status)


def _filter(device: str, smoke: bool, suite: str, ok_only: bool, metrics_version: str | None) -> str:
    """The MLflow search filter of comparable nights (successful ones only with ``ok_only``)."""
    parts = [
        f"tags.`{ROLE}` = 'nightly'",
        f"tags.`{DEVICE}` = '{device}'",
        f"tags.`{SMOKE}` = '{str(smoke).lower()}'",
        f"tags.`{SUITE}` = '{suite}'",
    ]
    if metrics_version is not None:
        parts.append(f"tags.`{METRICS_VERSION}` = '{metrics_version}'")
    if ok_only:
        parts += [f"tags.`{STATUS}` = '{STATUS_OK}'", "attributes.status = 'FINISHED'"]
    return " and ".join(parts)


def past_nights(
    uri: str,
    experiment_id: str,
    *,
    device: str,
    smoke: bool,
    suite: str,
    limit: int,
    ok_only: bool,
    exclude: str | None = None,
    metrics_version: str | None = None,
) -> list[PastNight]:
    """Earlier comparable nights (same device kind, smoke flag and suite), newest first.

    Args:
        metrics_version: Only nights whose metrics have this meaning (None: any, tagged or not).
        ok_only: Only successful nights (verdict ok, run FINISHED): the baseline. A regression night never
            becomes part of the baseline, or a slow drift would quietly lower the bar night after night.
        exclude: A run id to leave out (tonight's own run).
    """
    runs = tracking.client(uri).search_runs(
        [experiment_id],
        filter_string=_filter(device, smoke, suite, ok_only, metrics_version),
        order_by=["attributes.start_time DESC"],
        max_results=limit + 1,
    )
    nights = [
        PastNight(
            run.info.run_id,
            datetime.fromtimestamp(run.info.start_time / 1000, tz=timezone.utc),
            run.data.tags.get(STATUS, ""),
            dict(run.data.metrics),
            run.data.tags.get(RESET) == "true",
        )
        for run in runs
        if run.info.run_id != exclude
    ]
    return nights[:limit]
