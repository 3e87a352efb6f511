"""``python -m orchestrator.report --experiment NAME [--run-id PARENT] [--out DIR] [--tracking-uri URI]``:
rebuilds a sweep's comparison report from MLflow alone and prints its folder.

Exit 0: written; 1: the tracking store did not answer within the outage bound; 2: bad input (unknown
experiment or run, no trial runs, a missing sqlite store, an unwritable ``--out``), one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.report.build import build_sweep_report
from orchestrator.report.fetch import ReportInputError, resolve_tracking_uri
from orchestrator.tracking import runs as tracking


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 2 bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.report", description="Build a sweep comparison report from MLflow alone."
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name (= sweep name)")
    parser.add_argument("--run-id", default=None, help="sweep parent run id (default: the latest)")
    parser.add_argument("--out", default="reports", help="reports root (default: ./reports)")
    parser.add_argument(
        "--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db"
    )
    args = parser.parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri)
    from mlflow.exceptions import MlflowException

    from orchestrator.tracking.store import StoreError, check_writable, prepare_store

    try:
        # A report only reads the store: a missing database is not created (build_sweep_report says so),
        # and an existing one is opened under the lock a sweep creating it holds, and refused when old.
        prepare_store(uri, create=False)
        check_writable(Path(args.out), "--out")
        path = build_sweep_report(uri, args.experiment, args.run_id, args.out)
    except (ReportInputError, StoreError) as exc:
        print(f"orchestrator.report: {exc}", file=sys.stderr)
        return 2
    except tracking.TrackingUnavailable as exc:  # retried up to the outage bound first
        print(f"orchestrator.report: {tracking.one_line(exc)}", file=sys.stderr)
        return 1
    except MlflowException as exc:
        where = tracking.redact_uri(uri)
        print(f"orchestrator.report: MLflow at {where}: {tracking.one_line(exc.message)}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
