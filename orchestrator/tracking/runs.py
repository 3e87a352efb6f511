"""MLflow layout of a sweep: one parent run per invocation, one child run per trial.

The experiment is the sweep's ``name``. The parent run (``jepa.role=sweep``) carries the sweep file and the
trial table; each child run (``jepa.role=trial``, ``mlflow.parentRunId``) is created by its trial, on
whichever Ray node runs it, and holds the full resolved trainer config as params and the per-epoch metrics
with ``step=epoch``. Every call goes through an explicit :class:`mlflow.MlflowClient` on a given tracking URI,
never the process-global fluent state, because Ray workers are shared processes. Every call is retried while
the store is away or busy, for a bounded time (:mod:`orchestrator.tracking.retry`); a trial's epoch metrics
are sent from a background outbox, so training goes on while a tracking server restarts.

mlflow is imported inside the functions that log; URI resolution lives in :mod:`orchestrator.tracking.uri`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepa_core import machine
from orchestrator.tracking import history
from orchestrator.tracking.retry import MetricOutbox, RetryingClient, TrackingUnavailable, retrying
from orchestrator.tracking.uri import redact_uri, resolve_tracking_uri, ui_hint, unreachable

# Re-exported: callers catch TrackingUnavailable and resolve URIs through this module.
__all__ = ["TrackingUnavailable", "redact_uri", "resolve_tracking_uri", "ui_hint", "unreachable"]

ROLE, SWEEP, SEED, TRIAL_ID = "jepa.role", "jepa.sweep", "jepa.seed", "jepa.trial_id"
CONFIG_ID, FAILURE_REASON = "jepa.config_id", "jepa.failure_reason"
# Which profile a sweep ran (gpu | cpu | smoke) and why (--profile, or the cluster's GPUs): parent-run tags.
PROFILE, PROFILE_REASON = "jepa.profile", "jepa.profile_reason"
PARENT = "mlflow.parentRunId"
# What ``probe_acc`` / ``knn_acc`` mean in a run. "2": scored on a validation split carved from the training
# split, with ``test_probe_acc`` / ``test_knn_acc`` on the test split at the last epoch. Runs without the tag
# were logged before validation splits existed, when ``probe_acc`` was scored on the test split.
METRICS_VERSION, CURRENT_METRICS_VERSION = "jepa.metrics_version", "2"
_REPO = Path(__file__).resolve().parents[2]


def git_sha() -> str:
    """The commit of the code that runs (``-dirty`` when it has uncommitted changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def bound_http_retries() -> None:
    """Makes MLflow's own HTTP retries short (3 attempts over ~3 s) unless the user set them: a longer wait is
    this module's bounded retry, whose limit the user sets in one place, ``$JEPA_TRACKING_OUTAGE_S``."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def client(uri: str, bound_s: float | None = None) -> Any:
    """An :class:`mlflow.MlflowClient` for ``uri`` whose calls are retried through outages (at most
    ``bound_s`` seconds, default ``$JEPA_TRACKING_OUTAGE_S`` or 300), then raise
    :class:`TrackingUnavailable`."""
    from mlflow import MlflowClient

    return RetryingClient(MlflowClient(tracking_uri=uri), redact_uri(uri), bound_s)


def get_or_create_experiment(uri: str, name: str) -> str:
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    return c.create_experiment(name, tags={SWEEP: name})


def start_sweep_run(
    uri: str, experiment_id: str, run_name: str, tags: dict[str, str], artifacts: dict[str, str]
) -> str:
    """Creates the parent run of one sweep invocation and logs ``artifacts`` (file name -> text)."""
    c = client(uri)
    run = c.create_run(experiment_id, run_name=run_name, tags={ROLE: "sweep", **tags})
    for name, text in artifacts.items():
        c.log_text(run.info.run_id, text, name)
    return run.info.run_id


def set_run_status(
    uri: str, run_id: str, status: str, tags: dict[str, str] | None = None, bound_s: float | None = None
) -> None:
    """RUNNING reopens a run (resume, retry); FINISHED, FAILED or KILLED closes it."""
    c = client(uri, bound_s)
    for key, value in (tags or {}).items():
        c.set_tag(run_id, key, value)
    if status == "RUNNING":
        c.update_run(run_id, status="RUNNING")
    else:
        c.set_terminated(run_id, status=status)


def trial_runs(uri: str, experiment_id: str, parent_run_id: str) -> list[Any]:
    """Every child run of a parent run."""
    return client(uri).search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT}` = '{parent_run_id}'", max_results=5000
    )


def _trial_run(c: Any, experiment_id: str, trial_id: str) -> Any:
    """The child run a Tune trial created, found by its trial id tag, or None."""
    found = c.search_runs([experiment_id], filter_string=f"tags.`{TRIAL_ID}` = '{trial_id}'", max_results=1)
    return found[0] if found else None


@dataclass
class TrialRun:
    """The child run of one trial, created or reopened by the trial itself.

    ``logged_epochs`` is the last epoch already in MLflow: a retried trial resumes from its last checkpoint,
    so it may replay an epoch it logged before the failure; those epochs are not logged twice.

    ``final`` is set, and the run left closed, when the run had already ended FINISHED (it completed, or its
    scheduler stopped it): Tune saves its sweep state only every ~10 s, so a driver killed just after a trial
    ended restores that trial as unfinished. It holds the run's last metrics, ``epoch`` = its last epoch.

    Epoch metrics go through a :class:`MetricOutbox`: :meth:`log_epoch` returns at once, and :meth:`pending`
    (what the store has not confirmed yet) travels with each checkpoint, so a retried trial re-queues it with
    :meth:`requeue` and no epoch is lost or doubled.
    """

    uri: str
    run_id: str
    logged_epochs: int
    reopened: bool
    final: dict[str, float] | None = None
    _monitor: Any = None
    _outbox: MetricOutbox | None = None
    curves: history.Curves = field(default_factory=dict)  # the report's curves, sent as the history tag

    @classmethod
    def open(
        cls,
        uri: str,
        experiment_id: str,
        *,
        run_id: str | None,
        trial_id: str,
        run_name: str,
        tags: dict[str, str],
        params: dict[str, Any],
        config_yaml: str,
        system_metrics: bool = True,
    ) -> TrialRun:
        """Reopens ``run_id`` (from the checkpoint) or the run tagged with this trial id, else creates one;
        a run that already ended FINISHED is returned closed, with ``final`` set."""
        from mlflow import MlflowClient

        raw = MlflowClient(tracking_uri=uri)
        c = client(uri)
        # Without a run id (a retry that failed before its first checkpoint), the trial id tag finds the run.
        found = c.get_run(run_id) if run_id is not None else _trial_run(c, experiment_id, trial_id)
        if found is not None:
            run_id = found.info.run_id
            marker = c.get_metric_history(run_id, "train_loss")
            logged = max((int(m.step) for m in marker), default=0)
            if found.info.status == "FINISHED":
                final = {k: float(v) for k, v in found.data.metrics.items() if not k.startswith("system/")}
                return cls(uri, run_id, logged, True, final={**final, "epoch": float(logged)})
            c.update_run(run_id, status="RUNNING")
            if FAILURE_REASON in found.data.tags:  # the previous attempt's; this one may succeed
                c.delete_tag(run_id, FAILURE_REASON)
            run = cls(uri, run_id, logged, True)
            run._restore_curves(c, {"train_loss": marker})
        else:

            def find_or_create() -> Any:
                # Retried as a whole: when a create's answer was lost, the next attempt finds the run it made.
                return _trial_run(raw, experiment_id, trial_id) or raw.create_run(
                    experiment_id, run_name=run_name, tags={ROLE: "trial", TRIAL_ID: trial_id, **tags}
                )

            created = retrying(find_or_create, where=redact_uri(uri))
            run = cls(uri, created.info.run_id, 0, False)
            run._log_params(params)
            c.log_text(run.run_id, config_yaml, "config.yaml")
        if system_metrics:
            run._start_system_metrics()
        run._outbox = MetricOutbox(raw, run.run_id, redact_uri(uri))
        return run

    def _restore_curves(self, c: Any, fetched: dict[str, list[Any]]) -> None:
        """The curves of the epochs the store holds, read back metric by metric (a reopened run only);
        ``fetched`` holds the histories already read."""
        for key in history.HISTORY_KEYS:
            points = fetched[key] if key in fetched else c.get_metric_history(self.run_id, key)
            for m in sorted(points, key=lambda m: m.step):
                history.add_epoch(self.curves, int(m.step), {key: m.value}, (key,))

    def _log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, "null" if v is None else str(v)) for k, v in sorted(params.items())]
        c = client(self.uri)
        for i in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
            c.log_batch(self.run_id, params=items[i : i + 100])

    def _start_system_metrics(self) -> None:
        try:  # psutil (and pynvml for GPUs) are optional: without them the run simply has no system/ metrics
            import psutil  # noqa: F401
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
        except ImportError:
            return
        self._monitor = SystemMetricsMonitor(
            self.run_id, sampling_interval=5, resume_logging=self.reopened, tracking_uri=self.uri
        )
        self._monitor.start()

    def log_epoch(self, epoch: int, metrics: dict[str, Any]) -> bool:
        """Queues one epoch's numeric metrics at ``step=epoch``; False when that epoch was logged already.

        Raises :class:`TrackingUnavailable` once the store has been away longer than the outage bound.
        """
        if epoch <= self.logged_epochs and epoch > 0:
            return False
        from mlflow.entities import Metric

        now = int(time.time() * 1000)  # when the epoch ended, whenever the store takes it
        batch = [
            Metric(k, float(v), now, epoch)
            for k, v in metrics.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        self._queue(epoch, batch)
        return True

    def _queue(self, epoch: int, batch: list[Any]) -> None:
        if self._outbox is None:  # a run returned closed (``final``) logs nothing more
            raise RuntimeError(f"run {self.run_id} is closed")
        from mlflow.entities import RunTag

        history.add_epoch(self.curves, epoch, {m.key: m.value for m in batch})
        text = history.encode(self.curves)  # None once the curves outgrow a tag
        self._outbox.put(epoch, batch, [RunTag(history.HISTORY_TAG, text or "")])  # "": read the metrics
        self.logged_epochs = max(self.logged_epochs, epoch)

    def pending(self) -> list[dict[str, Any]]:
        """The queued epochs the store has not confirmed, as plain data (JSON) for a checkpoint."""
        if self._outbox is None:
            return []
        return [
            {"epoch": epoch, "metrics": [[m.key, m.value, m.timestamp] for m in batch]}
            for epoch, batch in self._outbox.pending()
        ]

    def requeue(self, pending: list[dict[str, Any]]) -> int:
        """Queues a checkpoint's unconfirmed epochs that the store does not hold; returns how many."""
        from mlflow.entities import Metric

        count = 0
        for item in sorted(pending, key=lambda p: int(p["epoch"])):
            epoch = int(item["epoch"])
            if epoch > self.logged_epochs:
                self._queue(epoch, [Metric(k, float(v), int(t), epoch) for k, v, t in item["metrics"]])
                count += 1
        return count

    def flush(self, timeout_s: float | None = None) -> None:
        """Waits until every queued epoch is stored; raises :class:`TrackingUnavailable` past the bound."""
        if self._outbox is not None:
            self._outbox.flush(timeout_s)

    def detach(self, flush_s: float | None = 30.0) -> None:
        """Stops logging from this process and leaves the run's status to the sweep driver.

        Queued epochs get ``flush_s`` seconds to reach the store (0: none; they are in the last checkpoint).
        """
        if self._monitor is not None:
            self._monitor.finish()
            self._monitor = None
        if self._outbox is not None:
            try:
                if flush_s:
                    self._outbox.flush(flush_s)
            except TrackingUnavailable:
                pass  # the checkpoint holds them: a resumed trial re-queues what the store lacks
            finally:
                self._outbox.close()
                self._outbox = None

    def close(self, status: str, reason: str | None = None, tags: dict[str, str] | None = None) -> None:
        """Ends the run: FINISHED, or FAILED with a one-line reason tag, once every queued epoch is stored.

        Raises :class:`TrackingUnavailable` when the store stays away past the bound.
        """
        try:
            self.flush()
        finally:
            self.detach(flush_s=0)
        tags = {**(tags or {}), **({FAILURE_REASON: one_line(reason)} if reason else {})}
        set_run_status(self.uri, self.run_id, status, tags)


def record_failed_trial(
    uri: str, experiment_id: str, run_name: str, tags: dict[str, str], params: dict[str, Any], reason: str
) -> str:
    """A FAILED child run for a trial that died before it could create its own (e.g. its worker crashed)."""
    c = client(uri)
    run = c.create_run(
        experiment_id, run_name=run_name, tags={ROLE: "trial", **tags, FAILURE_REASON: one_line(reason)}
    )
    TrialRun(uri, run.info.run_id, 0, False)._log_params(params)
    c.set_terminated(run.info.run_id, status="FAILED")
    return run.info.run_id


def one_line(text: object, limit: int = 500) -> str:
    """The first non-blank line of an error message, bounded: MLflow tags are short and UIs show one line."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else "unknown error")[:limit]


def version_tags() -> dict[str, str]:
    """Python and the torch, ray and mlflow versions (:func:`jepa_core.machine.versions`, no imports)."""
    found = machine.versions(("torch", "ray", "mlflow"))
    return {"jepa.python": found.pop("python"), **{f"jepa.{k}_version": v for k, v in found.items()}}


def environment_tags() -> dict[str, str]:
    """Host, code and library versions: what a reader needs to trust a number. No environment variables."""
    return {"jepa.git_sha": git_sha(), "jepa.host": machine.host(), **version_tags()}


def sweep_tags(
    name: str, swept: list[str], metric: str, goal: str, device: str, profile: str
) -> dict[str, str]:
    """The parent run's tags (DESIGN.md's MLflow layout, read back by the report); ``profile``: gpu, cpu or
    smoke (``jepa.smoke`` stays for readers of older sweeps)."""
    return {
        SWEEP: name,
        "jepa.swept_params": json.dumps(swept),
        "jepa.metric": metric,
        "jepa.metric_goal": goal,
        "jepa.device": device,
        PROFILE: profile,
        "jepa.smoke": str(profile == "smoke").lower(),
        METRICS_VERSION: CURRENT_METRICS_VERSION,
        **environment_tags(),
    }
