"""The function trainable: one trial of a sweep, a ``jepa_core.train`` run with its own MLflow child run.

A trial reports every epoch to Tune with the trainer's checkpoint (``ray.tune.report``) and resumes from
``ray.tune.get_checkpoint()`` after a failure or an interrupted sweep. It opens its own MLflow child run, so
it works the same on a remote node, and keeps that run's id in the checkpoint so a retry continues that run.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from orchestrator.sweep.overhead import FIRST_STEP_KEY, REPORTED_KEY
from orchestrator.sweep.plan import SweepPlan, config_id, trial_label, trial_params
from orchestrator.sweep.repeat import FAILED_KEY
from orchestrator.tracking import runs as tracking
from orchestrator.tracking import ui as mlflow_ui

RUN_ID_KEY = "mlflow_run_id"  # in the trainer checkpoint's extra state
EPOCH_FILE = "epoch.txt"  # beside checkpoint.pt in each Tune checkpoint
PENDING_FILE = "pending_metrics.json"  # beside it: epochs queued for MLflow, not yet confirmed stored


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one sweep invocation shares (passed once through ``tune.with_parameters``)."""

    plan: SweepPlan
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    git_sha: str
    base_dir: str  # the sweep's working directory: relative paths in the config are relative to it


def device_tag(device: str) -> str:
    """The device a trial trains on, as a user would name it (``cpu``, ``cuda:0 NVIDIA H100``)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        index = int(device.partition(":")[2] or 0)
        return f"cuda:{index} {torch.cuda.get_device_name(index)}"
    return device


def _log_dataset(uri: str, run_id: str, cfg: Any) -> None:
    """The trial's data as an MLflow input (the runs table's Dataset column). Only a store away past the
    outage bound fails the trial here; anything else is a warning."""
    try:
        dataset = mlflow_ui.dataset_input(cfg)
    except Exception as exc:  # noqa: BLE001 - training reads the data itself and says precisely what is wrong
        print(f"warning: the dataset input was not logged: {tracking.one_line(exc)}", file=sys.stderr)
        return
    c = tracking.client(uri)
    for attempt in range(3):
        try:
            c.log_inputs(run_id, datasets=[dataset])
            return
        except tracking.TrackingUnavailable:
            raise  # the store is away past the bound: the trial fails as for any other record
        except Exception as exc:  # noqa: BLE001 - e.g. sqlite's UNIQUE race when trials register one dataset
            # Trials starting together insert the same (experiment, name, digest) row; the loser's next try
            # finds the winner's row and only links it.
            if attempt == 2:
                print(f"warning: the dataset input was not logged: {tracking.one_line(exc)}", file=sys.stderr)
            else:
                time.sleep(0.2 * (attempt + 1))


class EpochReporter:
    """``on_epoch`` callback: logs to MLflow, then reports to Tune with the checkpoint when it is new.

    MLflow is written first: if the trial dies between the two, the retry resumes from the previous checkpoint
    and :class:`tracking.TrialRun` skips the epochs it already holds, so no step is logged twice. The epochs
    still queued for a tracking store that is away are saved with the checkpoint (``PENDING_FILE``): a retry
    re-queues the ones the store lacks, so none is lost either.
    """

    def __init__(self, run: tracking.TrialRun, stage_root: Path) -> None:
        self.run, self.stage_root = run, stage_root
        self.last: dict[str, Any] = {}
        self._last_stamp: tuple[int, int] | None = None

    def __call__(self, report: Any) -> None:
        self.run.log_epoch(report.epoch, report.metrics)
        self.last = dict(report.metrics)
        metrics = {k: float(v) for k, v in report.metrics.items() if isinstance(v, (int, float))}
        metrics["epoch"] = report.epoch
        # For the driver's start-up and wind-down line (never logged to MLflow): wall-clock seconds.
        if report.first_step_at is not None:
            metrics[FIRST_STEP_KEY] = report.first_step_at
        metrics[REPORTED_KEY] = time.time()
        stat = report.checkpoint_path.stat()
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if stamp == self._last_stamp:  # train.checkpoint_every > 1: this epoch wrote no checkpoint
            tune.report(metrics)
            return
        self._last_stamp = stamp
        stage = self.stage_root / f"epoch_{report.epoch:04d}"
        stage.mkdir(parents=True, exist_ok=True)
        try:
            # A hard link is free, and stays valid when the trainer atomically replaces checkpoint.pt.
            os.link(report.checkpoint_path, stage / "checkpoint.pt")
        except OSError:
            shutil.copy2(report.checkpoint_path, stage / "checkpoint.pt")
        (stage / EPOCH_FILE).write_text(str(report.epoch))
        (stage / PENDING_FILE).write_text(json.dumps(self.run.pending()))
        try:
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(stage)))
        finally:
            shutil.rmtree(stage, ignore_errors=True)  # report() has already persisted it to storage


def _restore(work: Path) -> tuple[Path | None, str | None, str, list[dict[str, Any]]]:
    """The checkpoint Tune hands a restarted trial (copied beside the trainer's files), run id, epoch, and the
    epochs its run had queued but the tracking store had not confirmed."""
    from jepa_core.checkpoint import read_extra_state

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, None, "0", []
    work.mkdir(parents=True, exist_ok=True)
    target = work / "resume.pt"
    with checkpoint.as_directory() as folder:
        shutil.copy2(Path(folder) / "checkpoint.pt", target)
        epoch = (Path(folder) / EPOCH_FILE).read_text().strip()
        pending_file = Path(folder) / PENDING_FILE
        pending = json.loads(pending_file.read_text()) if pending_file.is_file() else []  # older checkpoints
    return target, read_extra_state(target).get(RUN_ID_KEY), epoch, pending


def run_trial(config: dict[str, Any], ctx: TrialContext) -> None:
    """The function trainable: one trainer run with its MLflow child run."""
    from jepa_core.checkpoint import ResumeMismatchError
    from jepa_core.config import dump_yaml
    from jepa_core.train import DivergenceError, train

    tracking.bound_http_retries()
    tune_ctx = tune.get_context()
    params, seed = trial_params(config, ctx.plan)
    cpus = tune_ctx.get_trial_resources().required_resources.get("CPU", 1.0)
    # torch threads = the trial's CPUs, so concurrent trials do not oversubscribe the cores Ray gave them.
    extra = {"train.num_threads": max(1, int(cpus)), "train.progress": False}
    cfg = ctx.plan.trial_config(params, seed, extra)
    if cfg.data.root and not Path(cfg.data.root).is_absolute():  # Tune runs trials in their own folders
        cfg.data.root = str(Path(ctx.base_dir) / cfg.data.root)
    # Trainer files go to node-local scratch: the trial folder may be shared storage, and Tune already
    # persists every reported checkpoint there.
    work = (
        Path(tempfile.gettempdir())
        / "jepa-trials"
        / f"{tune_ctx.get_experiment_name()}-{tune_ctx.get_trial_id()}"
    )
    shutil.rmtree(work, ignore_errors=True)  # left behind by a worker that was killed
    resume_from, run_id, resumed_epoch, pending = _restore(work)

    label = trial_label(params, seed)
    tags = {
        tracking.PARENT: ctx.parent_run_id,
        tracking.SEED: str(seed),
        tracking.CONFIG_ID: config_id(params),
        tracking.SWEEP: ctx.plan.spec.name,
        "jepa.config": label,
        "jepa.trial_name": tune_ctx.get_trial_name(),
        "jepa.git_sha": ctx.git_sha,
        "jepa.device": device_tag(cfg.train.device),
        "jepa.host": socket.gethostname(),
        "jepa.node_id": ray.get_runtime_context().get_node_id(),
        "jepa.cpus": str(cpus),
        tracking.METRICS_VERSION: tracking.CURRENT_METRICS_VERSION,
        **tracking.version_tags(),
        **mlflow_ui.source_tags(ctx.git_sha),
    }
    run = tracking.TrialRun.open(
        ctx.tracking_uri,
        ctx.experiment_id,
        run_id=run_id,
        trial_id=tune_ctx.get_trial_id(),
        run_name=label,
        tags=tags,
        params=cfg.to_flat(),
        config_yaml=dump_yaml(cfg),
    )
    if run.final is not None:
        # It had ended before the driver died, but Tune's last saved state still had it running: hand Tune
        # its final result instead of training it again.
        shutil.rmtree(work, ignore_errors=True)
        tune.report(run.final)
        return
    run.requeue(pending)
    if not run.reopened:
        _log_dataset(ctx.tracking_uri, run.run_id, cfg)
    else:  # a retry or --resume: it may run on another node, from a checkpoint
        for key, value in (
            ("jepa.node_id", tags["jepa.node_id"]),
            ("jepa.resumed_from_epoch", resumed_epoch),
        ):
            tracking.client(ctx.tracking_uri).set_tag(run.run_id, key, value)
    reporter = EpochReporter(run, work / "stage")
    try:
        train(cfg, work, on_epoch=reporter, resume_from=resume_from, extra_state={RUN_ID_KEY: run.run_id})
    except DivergenceError as exc:
        # Deterministic: a retry would diverge at the same step, so the trial ends here, marked failed.
        run.close("FAILED", f"DivergenceError: {exc}")
        tune.report({FAILED_KEY: 1.0, "diverged_epoch": float(exc.epoch), "diverged_step": float(exc.step)})
        return
    except ResumeMismatchError as exc:
        # The checkpoint was trained under other settings (e.g. resumed with another resources.cpu, which sets
        # train.num_threads): a retry would be refused the same way, so the trial ends here, marked failed.
        run.close("FAILED", f"ResumeMismatchError: {exc}")
        tune.report({FAILED_KEY: 1.0})
        return
    except SystemExit:
        # Tune stopped the trial inside tune.report: an ASHA decision or a Ctrl-C. Only the driver knows
        # which, so it closes the run (FINISHED + jepa.stopped_early, or KILLED until --resume reopens it).
        run.detach()
        raise
    except tracking.TrackingUnavailable:
        # The store was away past the bound: closing the run would wait as long again. The trial fails with
        # this reason; its checkpoint holds the epochs not yet stored, for a retry or --resume.
        run.detach(flush_s=0)
        raise
    except BaseException as exc:
        run.close("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        release_memory()
    # The report flags collapsed trials (RankMe far below the embedding width) from this tag.
    run.close("FINISHED", tags={"jepa.collapsed": str(bool(reporter.last.get("collapsed"))).lower()})


def release_memory() -> None:
    """Gives a finished trial's memory back before the reused worker starts the next trial: Python's
    reference cycles, and on a GPU the blocks PyTorch's caching allocator keeps (trials may share a GPU)."""
    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
