"""Imports done ahead of need, so that neither the first trial's start nor the sweep's end waits for them.

- :func:`import_trial_modules` is a local cluster's ``worker_process_setup_hook``: a worker imports torch,
  timm and MLflow as its process starts, while Ray is still handing it the trial, instead of when
  :func:`orchestrator.sweep.trainable.run_trial` first needs them.
- :class:`ReportPreloader` imports the report's modules (pandas, matplotlib, scipy: seconds on 2 cores) in
  the driver once the first trial has reported, on a thread while trials train, instead of after the last
  one.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from ray import tune

REPORT_MODULE = "orchestrator.report.build"


def import_trial_modules() -> None:
    """Imports what :func:`orchestrator.sweep.trainable.run_trial` imports, and MLflow's tracking client."""
    import mlflow.tracking  # noqa: F401

    import jepa_core.train  # noqa: F401
    import orchestrator.sweep.trainable  # noqa: F401


class ReportPreloader(tune.Callback):
    """Imports :data:`REPORT_MODULE` at the first trial result (once), on a daemon thread: Tune's loop goes
    on (a pause there of 1.5 s made Ray print four "may be a performance bottleneck" warnings into the
    sweep's output), and the report at the end starts at once. Anything that needs the modules sooner waits
    on Python's import lock. Holds no state worth pickling (it is saved with the experiment): a resumed sweep
    imports again at its first result."""

    def __init__(self) -> None:
        self.done = False

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        if not self.done:
            self.done = True
            threading.Thread(target=_import_report, name="report-preload", daemon=True).start()


def _import_report() -> None:
    try:
        importlib.import_module(REPORT_MODULE)
    except ImportError:  # the report says so itself, at the end
        pass
