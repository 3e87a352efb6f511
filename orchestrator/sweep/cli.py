"""Run a sweep file on Ray Tune and track it in MLflow.

    python -m orchestrator.sweep sweeps/ema_momentum.yaml [--profile gpu|cpu|smoke] [--smoke] [--dry-run]
        [--resume] [--address ADDR] [--tracking-uri URI] [--report-dir DIR] [--storage-path DIR]
        [--set KEY=VALUE ...]

Without ``--profile``, a sweep whose trials ask for a GPU runs as written where the Ray cluster has a GPU and
its ``cpu`` section where it has none (:mod:`orchestrator.sweep.profiles`). ``--smoke`` is ``--profile
smoke``.

Exit status: 0 every trial finished, 1 some trial failed (the report is still written), 2 invalid input (one
line on stderr naming the file and the key), 130 interrupted (resume with ``--resume``).

This module checks every input before Ray or MLflow is imported; :mod:`orchestrator.sweep.run` runs the sweep.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from jepa_core.config import ConfigError, parse_set
from orchestrator.sweep.errors import SpecError
from orchestrator.sweep.estimate import cost_summary, local_gpus, start_cpu_timing, trial_table
from orchestrator.sweep.profiles import (
    ProfilePlans,
    choose_profile,
    plan_profiles,
    profile_line,
    requested_profile,
)
from orchestrator.sweep.spec import PROFILES, SweepSpec, load_spec
from orchestrator.sweep.state import find_interrupted, read_state, state_profile


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="sweep YAML file")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="gpu: the file as written; cpu: its section sized for a machine without a GPU; smoke: its "
        "pipeline check (default: gpu where the Ray cluster has a GPU, else cpu)",
    )
    parser.add_argument("--smoke", action="store_true", help="--profile smoke: the sweep in minutes on CPU")
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


def load_plans(args: argparse.Namespace) -> ProfilePlans:
    """Every input check that needs neither Ray nor MLflow, for every profile. Raises SpecError."""
    spec = load_spec(args.file)
    try:
        sets = parse_set(args.sets)
    except ConfigError as exc:
        raise SpecError(f"{exc}") from None
    return plan_profiles(spec, requested_profile(args.profile, args.smoke), sets)


def _interrupted_run(args: argparse.Namespace, plans: ProfilePlans, storage: Path) -> Path | None:
    """The interrupted run ``--resume`` continues (None without the flag); raises SpecError when the flag and
    the storage folder disagree: a sweep is never started twice by accident, nor resumed with other flags.
    A resumed sweep keeps the profile it started with; ``--profile`` may repeat it, not change it."""
    name = plans.spec.name
    interrupted = find_interrupted(storage, name)
    if args.resume and interrupted is None:
        raise SpecError(f"{args.file}: --resume: no interrupted run of sweep '{name}' under {storage}")
    if interrupted is not None and not args.resume:
        raise SpecError(
            f"{args.file}: sweep '{name}' was interrupted at {interrupted}; "
            f"continue it with: python -m orchestrator.sweep {args.file} --resume (or delete that "
            "folder to start over)"
        )
    if interrupted is not None:
        state = read_state(interrupted)
        started = state_profile(state, plans.spec.main_profile)
        sets = plans.sets
        if plans.requested not in (None, started) or state.get("sets") != sets:
            raise SpecError(
                f"{args.file}: --resume: the interrupted run used --profile {started} and --set "
                f"{state.get('sets')}; pass the same flags"
            )
        if started not in plans.by_profile:
            raise SpecError(
                f"{args.file}: --resume: the interrupted run used profile {started}, which the file no "
                "longer has"
            )
    return interrupted


def _dry_run(args: argparse.Namespace, plans: ProfilePlans) -> None:
    """The trial table and cost of the profile a run here would pick, and why it would pick it."""
    gpus = local_gpus()
    address = args.address or os.environ.get("RAY_ADDRESS")
    profile, why = choose_profile(plans.spec, plans.requested, gpus, "this machine")
    plan = plans.by_profile[profile]
    print(profile_line(plans.spec, profile, why))
    if address and plans.requested is None:
        print(f"note: on --address {address} the cluster's GPUs decide the profile when the sweep starts")
    print(trial_table(plan))
    print(cost_summary(plan, float(os.cpu_count() or 1), gpus))


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


def _estimate_needs_cpu_rate(requested: str | None, address: str | None) -> bool:
    """Whether the estimate will need this CPU's matmul rate, so it is worth timing before Ray starts: a CPU
    profile named, or none named and a local cluster on a machine without GPUs. On ``--address`` with no
    profile named the cluster decides when the sweep starts, and the rate is timed then if a CPU profile
    needs it."""
    return requested in ("cpu", "smoke") or (requested is None and not address and local_gpus() == 0)


def _name_local_token_auth(address: str | None) -> None:
    """A local cluster keeps Ray's default, token authentication, named explicitly (``RAY_AUTH_MODE=token``).
    Left unset, Ray turns it on itself and says so in a WARNING line, which was the first line of every sweep.
    Ray reads the variable once, when it is imported (set later, ``ray.init`` fails to authenticate), so this
    runs before ``import ray``; a value the user set is kept, as is Ray's own way where Ray is imported
    already (a test process)."""
    if not address and "ray" not in sys.modules:
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def main(argv: list[str] | None = None) -> int:
    """Validates every input, output folder and the tracking store, then runs the sweep; the exit status."""
    # Both import only the standard library: the checks below finish before Ray or MLflow is imported.
    from orchestrator.tracking.runs import resolve_tracking_uri
    from orchestrator.tracking.store import StoreError, prepare_outputs

    args = parse_args(argv)
    try:
        plans = load_plans(args)
        if args.dry_run:
            _dry_run(args, plans)
            return 0
        address = args.address or os.environ.get("RAY_ADDRESS")
        if plans.requested == "gpu" and not address:  # a local cluster has this machine's GPUs: say so now
            choose_profile(plans.spec, plans.requested, local_gpus(), "this machine")
        storage = Path(args.storage_path).resolve()
        interrupted = _interrupted_run(args, plans, storage)
        # Found here, before Ray starts: an unwritable or full folder, an old store. A new sqlite store is
        # created once, under a lock (trial workers only ever open an existing one), on a thread while Ray
        # starts: run_sweep waits for it before the first record.
        uri = resolve_tracking_uri(args.tracking_uri, plans.spec.tracking_uri)
        _check_services(uri, address)
        creation = prepare_outputs(
            uri,
            _output_folders(args, storage),
            tracking_label=_tracking_origin(args, plans.spec),
            background_creation=True,
        )
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if _estimate_needs_cpu_rate(plans.requested, address):
        start_cpu_timing()
    _name_local_token_auth(address)
    from orchestrator.sweep.run import run_sweep

    return run_sweep(plans, args, storage, interrupted, store_creation=creation)


def console_main() -> None:
    """``python -m orchestrator.sweep`` and ``jepa-sweep``: :func:`main`, then the process ends at once.

    By the time :func:`main` returns every run is closed, Ray is shut down and the report is written; the
    interpreter's own teardown of torch, Ray and matplotlib, which writes nothing, then took 2-4 s more on a
    2-core machine. So the streams are flushed and the process exits without it.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
