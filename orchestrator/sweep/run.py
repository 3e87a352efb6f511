"""Running a checked sweep: Ray up, the MLflow parent run, Tune's ``fit``, every run closed, the report.

:func:`run_sweep` is called by :func:`orchestrator.sweep.cli.main` once every input has been checked. It
prints the estimate and the parent run first, and ends with the closing lines users rely on: the report path,
the parent run id, the ``mlflow ui`` command and the URL of the experiment's runs table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import ray

from jepa_core.config import dump_yaml
from orchestrator.sweep.errors import SpecError
from orchestrator.sweep.estimate import fmt_duration, sweep_estimate, trial_table
from orchestrator.sweep.overhead import overhead_line, process_started_at
from orchestrator.sweep.plan import SweepPlan, config_id, trial_label
from orchestrator.sweep.profiles import ProfilePlans, choose_profile, profile_line
from orchestrator.sweep.spec import Resources
from orchestrator.sweep.state import read_state, state_profile, write_state
from orchestrator.sweep.trainable import TrialContext
from orchestrator.sweep.tuner import ProgressPrinter, build_tuner, trial_params
from orchestrator.tracking import retry as tracking_retry
from orchestrator.tracking import runs as tracking
from orchestrator.tracking import ui as mlflow_ui
from orchestrator.tracking.store import StoreCreation, StoreError


def _trial_resources(plan: SweepPlan, cpus: float, gpus: float, joined: bool) -> Resources:
    """The per-trial request fitted to the cluster: a GPU sweep without GPUs runs on CPU (after a warning)."""
    res = plan.resources
    if res.gpu > 0 and gpus == 0:
        res = Resources(cpu=res.cpu, gpu=0.0)
    if not joined and res.cpu > cpus:  # a local cluster never grows: such a trial would wait forever
        print(f"note: a trial asks for {res.cpu:g} CPUs but this machine has {cpus:g}; giving each {cpus:g}")
        res = Resources(cpu=cpus, gpu=res.gpu)
    return res


def _print_estimate(plan: SweepPlan, cpus: float, gpus: float) -> None:
    """The sweep's first line: its wall-time estimate, or a warning that a GPU sweep will run on CPUs."""
    if not plan.smoke and gpus == 0 and plan.resources.gpu > 0:
        seconds, _, conc = sweep_estimate(plan, cpus, 0)
        est = "an unknown time" if seconds is None else f"about {fmt_duration(seconds)}"
        print(
            f"warning: no GPU in the Ray cluster: {plan.num_trials} full-size trials will run on {cpus:g} "
            f"CPUs, {conc} at a time, for {est} (estimate). --smoke checks the sweep in minutes; "
            "Ctrl-C stops it and --resume continues it.",
            file=sys.stderr,
            flush=True,
        )
        return
    seconds, kind, conc = sweep_estimate(plan, cpus, gpus)
    if seconds is not None:
        print(
            f"estimated wall time: ~{fmt_duration(seconds)} ({plan.num_trials} trials on {kind}, "
            f"{conc} at a time)",
            flush=True,
        )


def _artifacts(plan: SweepPlan) -> dict[str, str]:
    """The parent run's files: the sweep file (URI passwords hidden), the trial table, the base config."""
    rows = [{"index": t.index, "config_id": t.config_id, "seed": t.seed, **t.params} for t in plan.trials]
    base = (
        plan.trial_config({}, plan.spec.seeds[0])
        if plan.spec.method == "optuna"
        else plan.trial_config(plan.trials[0].params, plan.trials[0].seed)
    )
    return {
        "sweep.yaml": tracking.redact_uri(plan.spec.text),
        "trials.txt": trial_table(plan) + "\n",
        "trials.json": json.dumps(rows, indent=1),
        "base_config.yaml": dump_yaml(base),
    }


def _finish_children(
    uri: str, experiment_id: str, parent_id: str, plan: SweepPlan, results: Any, interrupted: bool
) -> int:
    """Brings every child run to its trial's final state; returns the number of failed trials.

    Trials stopped by Tune (ASHA, Ctrl-C) or killed with their worker cannot close their own run; trials
    that failed before creating one get a FAILED run here, so the experiment holds one child per trial.
    """
    runs = {r.data.tags.get(tracking.TRIAL_ID): r for r in tracking.trial_runs(uri, experiment_id, parent_id)}
    failed = 0
    seen = set()
    for result in results:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id")
        if trial_id is None:  # never reported: the id is in the trial folder's name
            found = re.search(r"[0-9a-f]{5}_\d{5}", Path(result.path).name)
            trial_id = found.group(0) if found else ""
        seen.add(trial_id)
        failed += bool(result.error or metrics.get("failed"))
        params, seed = trial_params(result.config, plan)
        reason = tracking.one_line(str(result.error)) if result.error else None
        run = runs.get(trial_id)
        if run is None:
            if reason:  # died before it could create its run
                tags = {
                    tracking.PARENT: parent_id,
                    tracking.TRIAL_ID: trial_id,
                    tracking.SEED: str(seed),
                    tracking.CONFIG_ID: config_id(params),
                    tracking.SWEEP: plan.spec.name,
                }
                flat = plan.trial_config(params, seed).to_flat()
                tracking.record_failed_trial(
                    uri, experiment_id, trial_label(params, seed), tags, flat, reason
                )
        elif run.info.status != "RUNNING":
            continue  # the trial closed its own run
        elif reason:
            tracking.set_run_status(uri, run.info.run_id, "FAILED", {tracking.FAILURE_REASON: reason})
        elif interrupted:
            tracking.set_run_status(uri, run.info.run_id, "KILLED", {"jepa.interrupted": "true"})
        else:  # stopped by the scheduler (ASHA stops even at the last epoch)
            early = int(metrics.get("epoch", 0)) < plan.trial_config(params, seed).train.epochs
            tracking.set_run_status(
                uri, run.info.run_id, "FINISHED", {"jepa.stopped_early": str(early).lower()}
            )
    if not interrupted:
        # A trial that started after the last sweep state Tune saved before its driver was killed ran again
        # under a new trial id; the killed attempt's run (seconds of work, never closed) would be a duplicate.
        orphans = [r for t, r in runs.items() if t not in seen and r.info.status == "RUNNING"]
        mlflow = tracking.client(uri)
        for run in orphans:
            mlflow.delete_run(run.info.run_id)
        if orphans:
            print(
                f"note: deleted {len(orphans)} unfinished trial run(s) of the killed driver whose trials "
                "started over (restore them with mlflow runs restore --run-id ID)"
            )
    return failed


def _complete(experiment_dir: Path, num_trials: int) -> bool:
    """Whether every planned trial ended (finished, stopped early or failed for good).

    Ctrl-C makes ``fit()`` return normally, and in memory the interrupted trials then look TERMINATED; the
    experiment state Tune saved on disk (what ``--resume`` restores) keeps them unfinished, and lacks the
    trials a searcher had not created yet.
    """
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(str(experiment_dir)).trials
    return len(trials) >= num_trials and all(t.status in ("TERMINATED", "ERROR") for t in trials)


def _restorable(interrupted: Path | None) -> Path | None:
    """The experiment folder to restore, or None when Tune saved no state there before its driver died
    (killed in its first seconds): then the same experiment folder and parent run start the trials over."""
    if interrupted is None:
        return None
    if any(interrupted.glob("experiment_state-*.json")):
        return interrupted
    print("note: the interrupted sweep was killed before it saved any trial state; its trials start over")
    return None


def _stop_gracefully_on_sigterm() -> None:
    """SIGTERM (``kill``, a batch system's time limit) stops the sweep as Ctrl-C does: trials checkpoint,
    their runs are marked KILLED, and ``--resume`` continues. Without this, Ray's handler ends the driver
    at once and leaves every run RUNNING."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))


def _start_ray(address: str | None) -> bool:
    """Starts a local Ray cluster or joins ``address``; False (and one line on stderr) when joining fails."""
    # Eval metrics exist only on eval epochs; Tune's strict check would fail every other epoch's report.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    # Our ProgressPrinter is the display: the legacy engine with verbose=0 prints nothing of its own.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # A checkpoint every epoch is the design (resume loses at most one epoch), not a misconfiguration.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # A failed attempt gets one line from ProgressPrinter; its traceback stays in the trial's error.txt.
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    # Only the loggers build_tuner names (CSV and JSON): Tune's default TensorBoard one imports torch here.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    tracking.bound_http_retries()  # before Ray starts: its workers inherit the setting
    local = (
        {}
        if address
        else {
            "include_dashboard": False,
            # Trial workers import torch, timm and MLflow as they start (orchestrator.sweep.warm).
            "runtime_env": {"worker_process_setup_hook": "orchestrator.sweep.warm.import_trial_modules"},
        }
    )
    try:
        ray.init(address=address or "local", log_to_driver=False, logging_level=logging.WARNING, **local)
    except Exception as exc:  # ConnectionError, RuntimeError or AuthenticationError, depending on the cause
        if not address:
            raise
        hint = ""
        if "auth" in str(exc).lower():
            hint = " (the cluster uses token authentication: set RAY_AUTH_MODE=token and its token)"
        print(
            f"error: cannot join the Ray cluster at {address}: {tracking.one_line(str(exc), 300)}{hint}",
            file=sys.stderr,
        )
        return False
    return True


def _open_parent_run(
    plan: SweepPlan,
    args: argparse.Namespace,
    uri: str,
    experiment_id: str,
    storage: Path,
    device: str,
    profile_reason: str,
) -> tuple[str, str, dict[str, Any]]:
    """A new sweep's parent run and state file: (Tune experiment name, parent run id, state)."""
    spec = plan.spec
    cluster = ray.cluster_resources()
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    suffix = f"-{plan.profile.name}" if plan.profile.section else ""
    name = f"{spec.name}{suffix}-{time.strftime('%Y%m%d-%H%M%S')}"
    tags = tracking.sweep_tags(spec.name, spec.swept_keys, spec.metric, spec.goal, device, plan.profile.name)
    tags[tracking.PROFILE_REASON] = profile_reason
    tags["jepa.cluster"] = f"{len(ray.nodes())} nodes, {cpus:g} CPUs, {gpus:g} GPUs"
    tags.update(mlflow_ui.source_tags(tags["jepa.git_sha"]))
    if spec.description:  # the run's note until the report adds the answer to it
        tags[mlflow_ui.DESCRIPTION] = tags[mlflow_ui.NOTE] = spec.description
        tracking.client(uri).set_experiment_tag(experiment_id, mlflow_ui.NOTE, spec.description)
    parent_id = tracking.start_sweep_run(uri, experiment_id, name, tags, _artifacts(plan))
    (storage / name).mkdir(parents=True, exist_ok=True)
    state = {
        "name": spec.name,
        "status": "running",
        "parent_run_id": parent_id,
        "profile": plan.profile.name,
        "smoke": plan.smoke,
        "sets": plan.sets,
        "sweep_file": str(Path(args.file).resolve()),
    }
    write_state(storage / name, state)
    return name, parent_id, state


def _chosen_plan(plans: ProfilePlans, interrupted: Path | None, gpus: float) -> tuple[SweepPlan, str]:
    """The plan of the profile this run uses, and why: a resumed sweep keeps its own; a new one follows
    ``--profile``, else the cluster's GPUs. Raises SpecError (``--profile gpu`` without a GPU)."""
    if interrupted is not None:
        profile = state_profile(read_state(interrupted), plans.spec.main_profile)
        return plans.by_profile[profile], "the interrupted run's profile"
    profile, why = choose_profile(plans.spec, plans.requested, gpus, "the Ray cluster")
    return plans.by_profile[profile], why


def run_sweep(
    plans: ProfilePlans,
    args: argparse.Namespace,
    storage: Path,
    interrupted: Path | None,
    store_creation: StoreCreation | None = None,
) -> int:
    """Starts or joins Ray, runs (or resumes) the sweep, closes the MLflow runs, writes the report.

    ``plans``: the sweep in each of its profiles (:class:`~orchestrator.sweep.profiles.ProfilePlans`); which
    one runs is decided once Ray is up, from the cluster's GPUs (:func:`~.profiles.choose_profile`).
    ``store_creation``: a new tracking store being created meanwhile (:func:`prepare_outputs`); it is waited
    for once Ray is up, and a failure there ends the sweep with exit status 2 before anything was recorded.
    """
    spec = plans.spec
    uri = tracking.resolve_tracking_uri(args.tracking_uri, spec.tracking_uri)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not _start_ray(address):
        return 2
    cluster = ray.cluster_resources()
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    try:
        plan, why = _chosen_plan(plans, interrupted, gpus)
        if store_creation is not None:
            store_creation.wait()
    except (SpecError, StoreError) as exc:
        ray.shutdown()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(profile_line(spec, plan.profile.name, why), flush=True)
    try:
        _print_estimate(plan, cpus, gpus)
        res = _trial_resources(plan, cpus, gpus, joined=bool(address))
        experiment_id = tracking.get_or_create_experiment(uri, spec.name)
        if interrupted is not None:
            state = read_state(interrupted)
            name, parent_id = interrupted.name, state["parent_run_id"]
            tracking.set_run_status(uri, parent_id, "RUNNING", {"jepa.resumed": "true"})
        else:
            device = "cuda" if res.gpu > 0 else "cpu"
            name, parent_id, state = _open_parent_run(plan, args, uri, experiment_id, storage, device, why)
        print(
            f"sweep {spec.name}: MLflow parent run {parent_id} at {tracking.redact_uri(uri)}; "
            f"Tune results in {storage / name}",
            flush=True,
        )
        ctx = TrialContext(plan, uri, experiment_id, parent_id, tracking.git_sha(), base_dir=str(Path.cwd()))
        tuner = build_tuner(
            plan,
            ctx,
            name=name,
            storage=storage,
            cpu=res.cpu,
            gpu=res.gpu,
            restore=_restorable(interrupted),
            printer=ProgressPrinter(plan),
            preload_report=not args.no_report,
        )
        _stop_gracefully_on_sigterm()
        try:
            results = tuner.fit()
            stopped = not _complete(storage / name, plan.num_trials)
        except KeyboardInterrupt:
            results, stopped = [], True
        try:
            failed = _finish_children(uri, experiment_id, parent_id, plan, results, stopped)
            lost = [r for r in results if r.error and "TrackingUnavailable" in str(r.error)]
            if stopped or lost:
                tags = {"jepa.interrupted": "true"} if stopped else {"jepa.tracking_lost": str(len(lost))}
                tracking.set_run_status(uri, parent_id, "KILLED", tags)
        except tracking.TrackingUnavailable as exc:
            return _store_lost(exc, args, plan, storage / name)
    finally:
        ray.shutdown()
    hint, url = tracking.ui_hint(uri, experiment_id)
    if stopped:
        print(f"interrupted: continue with {_resume_command(args, plan)}", file=sys.stderr)
        print(f"parent run: {parent_id}\n{hint}\n{url}")
        return 130
    if lost:  # the sweep state stays "running": --resume reruns these trials from their checkpoints
        print(
            f"error: {len(lost)} trial(s) failed because the tracking store was away for longer than "
            f"{tracking_retry.outage_bound_s():.0f} s; once it answers, continue with "
            f"{_resume_command(args, plan)}",
            file=sys.stderr,
        )
        print(f"parent run: {parent_id}\n{hint}\n{url}")
        return 1
    try:
        tracking.set_run_status(
            uri,
            parent_id,
            "FAILED" if failed else "FINISHED",
            {"jepa.trials_total": str(len(results)), "jepa.trials_failed": str(failed)},
        )
        report = _build_report(uri, spec.name, parent_id, args)
    except tracking.TrackingUnavailable as exc:  # the state stays "running": --resume does what is left
        return _store_lost(exc, args, plan, storage / name)
    state["status"] = "finished"
    write_state(storage / name, state)
    print(f"{len(results) - failed} of {len(results)} trials finished, {failed} failed")
    print(f"report: {report}")
    print(f"parent run: {parent_id}")
    print(f"trials with their charts: {mlflow_ui.trials_url(url, parent_id, spec.metric, spec.goal)}")
    line = overhead_line(results, process_started_at(), time.time())
    if line:
        print(line)
    print(hint)
    print(url, flush=True)
    return 1 if failed else 0


def _resume_command(args: argparse.Namespace, plan: SweepPlan) -> str:
    profile = plan.profile
    chosen = (" --smoke" if plan.smoke else f" --profile {profile.name}") if profile.section else ""
    flags = "".join([chosen, *(f" --set {item}" for item in args.sets)])
    return f"python -m orchestrator.sweep {args.file} --resume{flags}"


def _store_lost(exc: Exception, args: argparse.Namespace, plan: SweepPlan, experiment_dir: Path) -> int:
    """The driver could not write its closing records: everything is kept for ``--resume`` to upload."""
    print(f"error: {tracking.one_line(exc)}", file=sys.stderr)
    print(
        f"the trials' results and checkpoints are kept in {experiment_dir}; once the tracking store answers, "
        f"{_resume_command(args, plan)} closes the runs and writes the report",
        file=sys.stderr,
    )
    return 1


def _build_report(uri: str, name: str, parent_id: str, args: argparse.Namespace) -> str:
    """The report directory, or why there is none: a report failure never loses the sweep."""
    if args.no_report:
        return "skipped (--no-report)"
    try:
        from orchestrator.report.build import build_sweep_report
    except ImportError as exc:
        return f"not written (orchestrator.report unavailable: {exc})"
    try:
        out = Path(args.report_dir).resolve()
        return str(build_sweep_report(uri, name, parent_id, out, require_upload=True))
    except tracking.TrackingUnavailable:
        raise  # the driver keeps the sweep resumable: --resume writes and logs the report
    except Exception as exc:  # noqa: BLE001 - the sweep's results are safe in MLflow; say what went wrong
        print(
            f"warning: the report failed: {type(exc).__name__}: {exc}; rebuild it with "
            f"python -m orchestrator.report --experiment {name} --run-id {parent_id}",
            file=sys.stderr,
        )
        return "not written (see the warning above)"
