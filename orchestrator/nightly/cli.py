"""The nightly benchmark: one command that says whether the trainer or the orchestrator got slower or worse.

    python -m orchestrator.nightly [--smoke] [--baseline FILE | --reset-baseline] [--write-baseline FILE]
        [--suite FILE] [--tracking-uri URI] [--report-dir DIR]

Runs the suite in ``sweeps/nightly.yaml`` (trainer throughput, a fixed-budget Fashion-MNIST quality run,
orchestration overhead), records the night as an MLflow run in experiment ``nightly``, compares it with the
baseline and writes ``reports/nightly/<date>/``. The baseline is the rolling median of the last N successful
nights of the same device kind, smoke flag and suite in MLflow, or ``--baseline FILE``.

Exit status: 0 no regression (a first night establishes the baseline), 1 regression (the table names each
metric, its baseline, tonight's value and the tolerance), 2 invalid input (one line on stderr, no traceback),
130 interrupted. Timing metrics are compared after normalising by the matmul peak measured around their
section the same night; one the machine moved too far to judge is ``inconclusive``, which alone exits 0.

This module is the command line (arguments, the checks that need neither torch nor MLflow, exit status);
the night itself is orchestrator.nightly.night's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.nightly.baseline import BaselineError, read_baseline
from orchestrator.nightly.suite import Suite, SuiteError, load_suite
from orchestrator.tracking.runs import TrackingUnavailable, one_line, resolve_tracking_uri
from orchestrator.tracking.store import StoreError, prepare_outputs

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SUITE = Path("sweeps") / "nightly.yaml"


class InputError(ValueError):
    """Invalid command-line input; the message is one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, like every other invalid input (argparse would print the whole usage first).
        self.exit(2, f"error: {message} (see python -m orchestrator.nightly --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; an unknown or malformed argument exits 2 with one line."""
    parser = _Parser(prog="python -m orchestrator.nightly", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the shrunk suite (<= 5 minutes on 2 CPU cores)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--baseline", metavar="FILE", help='compare with a JSON file {"metrics": {name: number}}'
    )
    source.add_argument(
        "--reset-baseline",
        action="store_true",
        help="accept a deliberate change: tonight starts a new baseline; earlier nights no longer count",
    )
    parser.add_argument("--write-baseline", metavar="FILE", help="write tonight's metrics as a baseline file")
    parser.add_argument("--suite", metavar="FILE", help=f"suite file (default ./{DEFAULT_SUITE})")
    parser.add_argument(
        "--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db"
    )
    parser.add_argument("--report-dir", default="reports", help="reports root (default ./reports)")
    return parser.parse_args(argv)


def suite_path(given: str | None) -> Path:
    """``--suite``, else ``./sweeps/nightly.yaml``, else the repository's copy (runs from any directory)."""
    if given:
        return Path(given)
    return DEFAULT_SUITE if DEFAULT_SUITE.is_file() else REPO / DEFAULT_SUITE


def validate_inputs(args: argparse.Namespace) -> tuple[Suite, tuple[dict[str, float], dict[str, Any]] | None]:
    """Every check that needs neither torch nor MLflow. Raises SuiteError, BaselineError or InputError."""
    suite = load_suite(suite_path(args.suite), smoke=args.smoke)
    baseline = read_baseline(args.baseline) if args.baseline else None
    if args.write_baseline:
        target = Path(args.write_baseline)
        if target.is_dir():
            raise InputError(f"--write-baseline {target}: is a directory")
        if not target.parent.is_dir():
            raise InputError(f"--write-baseline {target}: folder {target.parent} does not exist")
    return suite, baseline


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestrator.nightly``; returns the exit status (0 ok, 1 regression, 2 invalid input)."""
    args = parse_args(argv)
    try:
        suite, file_baseline = validate_inputs(args)
        # Before anything runs: an unwritable or full report folder, an old store; a new sqlite store is
        # created once, under the lock every sweep and report also takes.
        uri = resolve_tracking_uri(args.tracking_uri, None)
        prepare_outputs(uri, {"--report-dir": Path(args.report_dir).resolve()})
    except (SuiteError, BaselineError, InputError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from orchestrator.nightly.night import run_night  # pandas, and MLflow when the night starts

    try:
        return run_night(suite, args, file_baseline)
    except TrackingUnavailable as exc:  # retried up to the outage bound first
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
