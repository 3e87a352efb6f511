"""Run a sweep file on Ray Tune and track it in MLflow.

    python -m orchestrator.sweep sweeps/ema_momentum.yaml [--smoke] [--dry-run] [--resume] [--address ADDR]
        [--tracking-uri URI] [--report-dir DIR] [--storage-path DIR] [--set KEY=VALUE ...]

Exit status: 0 every trial finished, 1 some trial failed (the report is still written), 2 invalid input (one
line on stderr naming the file and the key), 130 interrupted (resume with ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jepa_core.config import ConfigError, dump_yaml, parse_set
from orchestrator.sweep.estimate import describe, fmt_duration, local_gpus, sweep_estimate, trial_table
from orchestrator.sweep.spec import (
    Resources,
    SpecError,
    SweepPlan,
    SweepSpec,
    config_id,
    load_spec,
    plan_sweep,
)

STATE_FILE = "jepa_sweep.json"  # in the Tune experiment folder: what --resume needs to continue it


# ---- command line --------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="sweep YAML file")
    parser.add_argument("--smoke", action="store_true", help="tiny trials: the whole sweep in minutes on CPU")
    parser.add_argument("--dry-run", action="store_true", help="print the trials and cost, start nothing")
    parser.add_argument("--resume", action="store_true", help="continue this sweep's last interrupted run")
    parser.add_argument("--address", help="join this Ray cluster (default $RAY_ADDRESS, else a local one)")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, the sweep "
        "file's tracking_uri, then sqlite:///mlflow.db here)",
    )
    parser.add_argument("--report-dir", default="reports", help="where reports go (default ./reports)")
    parser.add_argument(
        "--storage-path",
        default="ray_results",
        help="Tune results and checkpoints (default ./ray_results; shared on clusters)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="sets",
        help="override a trainer config key in every trial (applied last, repeatable)",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="skip the report (rebuild it later: python -m orchestrator.report)",
    )
    return parser.parse_args(argv)


def load_plan(args: argparse.Namespace) -> SweepPlan:
    """Every input check that needs neither Ray nor MLflow. Raises SpecError."""
    spec = load_spec(args.file)
    try:
        sets = parse_set(args.sets)
    except ConfigError as exc:
        raise SpecError(f"{exc}") from None
    return plan_sweep(spec, smoke=args.smoke, sets=sets)


def find_interrupted(storage: Path, spec: SweepSpec) -> Path | None:
    """The newest Tune experiment folder of this sweep that never finished."""
    candidates = []
    for state_file in storage.glob(f"{spec.name}-*/{STATE_FILE}"):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        if state.get("status") == "running" and state.get("name") == spec.name:
            candidates.append(state_file.parent)
    return max(candidates, key=lambda p: p.name) if candidates else None


def _output_folders(args: argparse.Namespace, storage: Path) -> dict[str, Path]:
    """The folders a sweep writes to, by the flag that sets them (no report folder with ``--no-report``)."""
    folders = {"--storage-path": storage}
    if not args.no_report:
        folders["--report-dir"] = Path(args.report_dir).resolve()
    return folders


def _tracking_origin(args: argparse.Namespace, spec: SweepSpec) -> str:
    """Where the tracking URI came from, in the order of ``tracking.resolve_tracking_uri``: errors name it."""
    if args.tracking_uri:
        return "--tracking-uri"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "$MLFLOW_TRACKING_URI"
    if spec.tracking_uri:
        return f"{args.file}: tracking_uri"
    return "the default tracking URI"


def _check_services(uri: str, address: str | None) -> None:
    """The tracking server and the Ray cluster answer (each would otherwise retry for minutes)."""
    from orchestrator.tracking.runs import redact_uri, unreachable

    problem = unreachable(uri)
    if problem:
        raise SpecError(f"tracking URI {redact_uri(uri)}: {problem}")
    if address and not _reachable(address):
        raise SpecError(
            f"--address {address}: no Ray cluster answers there (start one with `ray start --head`, "
            "or leave --address and RAY_ADDRESS unset for a local one)"
        )


def main(argv: list[str] | None = None) -> int:
    """Validates every input, output folder and the tracking store, then runs the sweep; the exit status."""
    # Both import only the standard library: the checks below finish before Ray or MLflow is imported.
    from orchestrator.tracking.runs import resolve_tracking_uri
    from orchestrator.tracking.store import StoreError, prepare_outputs

    args = parse_args(argv)
    try:
        plan = load_plan(args)
        if args.dry_run:
            print(trial_table(plan))
            print(describe(plan, float(os.cpu_count() or 1), local_gpus()))
            return 0
        storage = Path(args.storage_path).resolve()
        interrupted = find_interrupted(storage, plan.spec)
        if args.resume and interrupted is None:
            raise SpecError(
                f"{args.file}: --resume: no interrupted run of sweep '{plan.spec.name}' under {storage}"
            )
        if interrupted is not None and not args.resume:
            raise SpecError(
                f"{args.file}: sweep '{plan.spec.name}' was interrupted at {interrupted}; "
                f"continue it with: python -m orchestrator.sweep {args.file} --resume (or delete that "
                "folder to start over)"
            )
        if interrupted is not None:
            state = json.loads((interrupted / STATE_FILE).read_text())
            if state.get("smoke") != plan.smoke or state.get("sets") != plan.sets:
                raise SpecError(
                    f"{args.file}: --resume: the interrupted run used --smoke="
                    f"{state.get('smoke')} and --set {state.get('sets')}; pass the same flags"
                )
        # Found here, before Ray starts: an unwritable or full folder, an old store. A new sqlite store is
        # created here, once, under a lock: trial workers only ever open an existing one.
        uri = resolve_tracking_uri(args.tracking_uri, plan.spec.tracking_uri)
        _check_services(uri, args.address or os.environ.get("RAY_ADDRESS"))
        prepare_outputs(uri, _output_folders(args, storage), tracking_label=_tracking_origin(args, plan.spec))
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_sweep(plan, args, storage, interrupted)


# ---- the run --------------------------------------------------------------------------------
def _trial_resources(plan: SweepPlan, cpus: float, gpus: float, joined: bool) -> Resources:
    """The per-trial request fitted to the cluster: a GPU sweep without GPUs runs on CPU (after a warning)."""
    res = plan.resources
    if res.gpu > 0 and gpus == 0:
        res = Resources(cpu=res.cpu, gpu=0.0)
    if not joined and res.cpu > cpus:  # a local cluster never grows: such a trial would wait forever
        print(f"note: a trial asks for {res.cpu:g} CPUs but this machine has {cpus:g}; giving each {cpus:g}")
        res = Resources(cpu=cpus, gpu=res.gpu)
    return res


def _warn_cpu_only(plan: SweepPlan, cpus: float) -> None:
    seconds, _, conc = sweep_estimate(plan, cpus, 0)
    est = "an unknown time" if seconds is None else f"about {fmt_duration(seconds)}"
    print(
        f"warning: no GPU in the Ray cluster: {plan.num_trials} full-size trials will run on {cpus:g} "
        f"CPUs, {conc} at a time, for {est} (estimate). --smoke checks the sweep in minutes; Ctrl-C stops it "
        "and --resume continues it.",
        file=sys.stderr,
        flush=True,
    )


def _artifacts(plan: SweepPlan) -> dict[str, str]:
    from orchestrator.tracking.runs import redact_uri

    rows = [{"index": t.index, "config_id": t.config_id, "seed": t.seed, **t.params} for t in plan.trials]
    base = (
        plan.trial_config({}, plan.spec.seeds[0])
        if plan.spec.method == "optuna"
        else plan.trial_config(plan.trials[0].params, plan.trials[0].seed)
    )
    return {
        "sweep.yaml": redact_uri(plan.spec.text),
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
    from orchestrator.sweep.trainable import trial_label, trial_params
    from orchestrator.tracking import runs as tracking

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


def _reachable(address: str) -> bool:
    """Whether a ``host:port`` Ray address accepts connections (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:  # "auto", "ray://...": leave it to Ray
        return True
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except OSError:
        return False


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


def run_sweep(plan: SweepPlan, args: argparse.Namespace, storage: Path, interrupted: Path | None) -> int:
    """Starts or joins Ray, runs (or resumes) the sweep, closes the MLflow runs, writes the report."""
    import logging

    import ray

    from orchestrator.sweep.trainable import ProgressPrinter, TrialContext, build_tuner
    from orchestrator.tracking import retry as tracking_retry
    from orchestrator.tracking import runs as tracking
    from orchestrator.tracking import ui as mlflow_ui

    spec = plan.spec
    uri = tracking.resolve_tracking_uri(args.tracking_uri, spec.tracking_uri)
    address = args.address or os.environ.get("RAY_ADDRESS")
    # Eval metrics exist only on eval epochs; Tune's strict check would fail every other epoch's report.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    # Our ProgressPrinter is the display: the legacy engine with verbose=0 prints nothing of its own.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # A checkpoint every epoch is the design (resume loses at most one epoch), not a misconfiguration.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # A failed attempt gets one line from ProgressPrinter; its traceback stays in the trial's error.txt.
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    tracking.bound_http_retries()  # before Ray starts: its workers inherit the setting
    local = {} if address else {"include_dashboard": False}
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
        return 2
    try:
        cluster = ray.cluster_resources()
        cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
        if not plan.smoke and gpus == 0 and plan.resources.gpu > 0:
            _warn_cpu_only(plan, cpus)
        else:
            seconds, kind, conc = sweep_estimate(plan, cpus, gpus)
            if seconds is not None:
                print(
                    f"estimated wall time: ~{fmt_duration(seconds)} ({plan.num_trials} trials on {kind}, "
                    f"{conc} at a time)",
                    flush=True,
                )
        res = _trial_resources(plan, cpus, gpus, joined=bool(address))
        experiment_id = tracking.get_or_create_experiment(uri, spec.name)
        device = "cuda" if res.gpu > 0 else "cpu"
        if interrupted is not None:
            state = json.loads((interrupted / STATE_FILE).read_text())
            name, parent_id = interrupted.name, state["parent_run_id"]
            tracking.set_run_status(uri, parent_id, "RUNNING", {"jepa.resumed": "true"})
        else:
            name = f"{spec.name}{'-smoke' if plan.smoke else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
            tags = tracking.sweep_tags(spec.name, spec.swept_keys, spec.metric, spec.goal, device, plan.smoke)
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
                "smoke": plan.smoke,
                "sets": plan.sets,
                "sweep_file": str(Path(args.file).resolve()),
            }
            (storage / name / STATE_FILE).write_text(json.dumps(state, indent=1))
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
    (storage / name / STATE_FILE).write_text(json.dumps(state, indent=1))
    print(f"{len(results) - failed} of {len(results)} trials finished, {failed} failed")
    print(f"report: {report}")
    print(f"parent run: {parent_id}")
    print(f"trials with their charts: {mlflow_ui.trials_url(url, parent_id, spec.metric, spec.goal)}")
    print(hint)
    print(url)
    return 1 if failed else 0


def _resume_command(args: argparse.Namespace, plan: SweepPlan) -> str:
    flags = "".join([" --smoke" * plan.smoke, *(f" --set {item}" for item in args.sets)])
    return f"python -m orchestrator.sweep {args.file} --resume{flags}"


def _store_lost(exc: Exception, args: argparse.Namespace, plan: SweepPlan, experiment_dir: Path) -> int:
    """The driver could not write its closing records: everything is kept for ``--resume`` to upload."""
    from orchestrator.tracking.runs import one_line

    print(f"error: {one_line(exc)}", file=sys.stderr)
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
        from orchestrator.report.compose import build_sweep_report
    except ImportError as exc:
        return f"not written (orchestrator.report unavailable: {exc})"
    from orchestrator.tracking.runs import TrackingUnavailable

    try:
        out = Path(args.report_dir).resolve()
        return str(build_sweep_report(uri, name, parent_id, out, require_upload=True))
    except TrackingUnavailable:
        raise  # the driver keeps the sweep resumable: --resume writes and logs the report
    except Exception as exc:  # noqa: BLE001 - the sweep's results are safe in MLflow; say what went wrong
        print(
            f"warning: the report failed: {type(exc).__name__}: {exc}; rebuild it with "
            f"python -m orchestrator.report --experiment {name} --run-id {parent_id}",
            file=sys.stderr,
        )
        return "not written (see the warning above)"


if __name__ == "__main__":
    sys.exit(main())
