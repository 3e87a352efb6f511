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
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from orchestrator.nightly.suite import Suite, SuiteError, load_suite
from orchestrator.nightly.verdict import (
    BaselineError,
    Row,
    inconclusive,
    judge,
    markdown_table,
    peak_lines,
    read_baseline,
    regressions,
    rolling_median,
    verdict_line,
    write_baseline,
)
from orchestrator.tracking.runs import (
    CURRENT_METRICS_VERSION,
    TrackingUnavailable,
    one_line,
    resolve_tracking_uri,
)
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
    try:
        return run_night(suite, args, file_baseline)
    except TrackingUnavailable as exc:  # retried up to the outage bound first
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1


class _Clock:
    """Progress lines with the time since the night started."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, message: str) -> None:
        s = int(self.elapsed)
        print(f"[nightly {s // 60:d}:{s % 60:02d}] {message}", flush=True)


@dataclass
class Night:
    """Tonight: where it is recorded and what produced it."""

    suite: Suite
    uri: str
    experiment_id: str
    run_id: str
    run_name: str
    device: str
    env: dict[str, str]  # git SHA, host, versions
    tags: dict[str, str]
    now: datetime
    out: Path  # the report folder

    @property
    def comparable(self) -> dict[str, Any]:
        """What an earlier night must share with tonight to be compared with it."""
        return {
            "device": self.device,
            "smoke": self.suite.smoke,
            "suite": self.suite.fingerprint,
            "metrics_version": CURRENT_METRICS_VERSION,
        }


def run_night(suite: Suite, args: argparse.Namespace, file_baseline: tuple[dict, dict] | None) -> int:
    """Measures, records, judges and reports one night; returns the exit status."""
    from orchestrator.nightly import measure, store

    log = _Clock()
    night = open_night(suite, args, log)
    if isinstance(night, int):
        return night
    try:
        with tempfile.TemporaryDirectory(prefix="jepa-nightly-") as work:
            result = measure.run_suite(suite, Path(work), night.out, night.uri, log)
        result.metrics["suite.wall_s"] = log.elapsed
        store.log_metrics(night.uri, night.run_id, result.metrics)
        baseline, source = choose_baseline(night, args, file_baseline, result.notes)
        rows = judge(result.metrics, baseline, suite.tolerances)
        failed, unsure = regressions(rows), inconclusive(rows)
        status = store.STATUS_REGRESSION if failed or result.failures else store.STATUS_OK
        notes = [*result.notes, *(f"{k} FAILED: {v}" for k, v in result.failures.items())]
        notes += peak_lines(rows, result.metrics)
        write_report(night, rows, status, source, notes, result)
        if args.write_baseline:
            meta = {**night.comparable, "git_sha": night.env["jepa.git_sha"], "host": night.env["jepa.host"]}
            meta.update(created=night.now.isoformat(timespec="seconds"), mlflow_run_id=night.run_id)
            write_baseline(args.write_baseline, result.metrics, meta)
            notes.append(f"baseline file written: {args.write_baseline}")
        end_tags = {store.STATUS: status, store.BASELINE: source[:500]}
        if failed:
            end_tags[store.REGRESSED] = ",".join(r.metric for r in failed)[:5000]
        if unsure:
            end_tags[store.INCONCLUSIVE] = ",".join(r.metric for r in unsure)[:5000]
        if result.failures:
            end_tags[store.FAILURES] = "; ".join(f"{k}: {v}" for k, v in result.failures.items())[:5000]
        run_status = "FAILED" if result.failures else "FINISHED"
        store.finish_night(night.uri, night.run_id, run_status, end_tags, night.out)
    except KeyboardInterrupt:
        store.finish_night(night.uri, night.run_id, "KILLED", {"jepa.interrupted": "true"}, None)
        print("interrupted: the night is recorded as KILLED and never used as a baseline", file=sys.stderr)
        return 130
    except BaseException:
        store.finish_night(night.uri, night.run_id, "FAILED", {}, None)
        raise
    print_verdict(night, rows, status, source, baseline is None, notes, result.failures)
    print(f"suite wall time: {result.metrics['suite.wall_s']:.0f} s on {night.device}")
    return 0 if status == store.STATUS_OK else 1


def open_night(suite: Suite, args: argparse.Namespace, log: _Clock) -> Night | int:
    """Checks the data and the MLflow store, then creates tonight's run; an int is the exit status (2)."""
    from mlflow.exceptions import MlflowException

    from jepa_core.data import DataError
    from orchestrator.nightly import measure, store
    from orchestrator.nightly.report import night_dir
    from orchestrator.tracking import runs as tracking

    uri = tracking.resolve_tracking_uri(args.tracking_uri, None)
    try:
        measure.check_data(suite)
        experiment_id = store.open_experiment(uri, suite.experiment)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MlflowException as exc:
        where = tracking.redact_uri(uri)
        print(f"error: MLflow at {where}: {tracking.one_line(exc.message)}", file=sys.stderr)
        return 2
    device, env = measure.device_kind(), store.environment_tags()
    now = datetime.now(timezone.utc).astimezone()
    tags = {
        store.DEVICE: device,
        store.SMOKE: str(suite.smoke).lower(),
        store.SUITE: suite.fingerprint,
        store.METRICS_VERSION: CURRENT_METRICS_VERSION,
        **env,
    }
    params = {"suite_file": str(suite.path), "window": suite.window, **_flat("", suite.settings)}
    run_name = f"nightly{'-smoke' if suite.smoke else ''}-{now.strftime('%Y%m%d-%H%M%S')}"
    run_id = store.start_night(uri, experiment_id, run_name, tags, params)
    out = night_dir(args.report_dir, now)
    (out / "suite.yaml").write_text(_suite_yaml(suite))
    log(f"{run_name} on {device} ({env['jepa.host']}), git {env['jepa.git_sha'][:12]}")
    log(f"MLflow run {run_id} at {tracking.redact_uri(uri)}; report folder {out}")
    if not suite.smoke and device.startswith("cpu:"):
        log("warning: the full suite is sized for one GPU; without one it takes hours (--smoke: minutes)")
    return Night(suite, uri, experiment_id, run_id, run_name, device, env, tags, now, out)


_OLD_MEANING = (
    "{what} scored quality.probe_acc and quality.knn_acc on the test split; they are now scored on a "
    "validation split carved from the training split (the test figures are quality.test_probe_acc and "
    "quality.test_knn_acc), so tonight starts a new baseline for them"
)


def choose_baseline(
    night: Night, args: argparse.Namespace, file_baseline: tuple[dict, dict] | None, notes: list[str]
) -> tuple[dict[str, float] | None, str]:
    """The baseline metrics (None: there is none) and a line saying where they come from."""
    from orchestrator.nightly import store

    if file_baseline is not None:
        baseline, meta = file_baseline
        differs = [f"{k}={meta[k]!r}" for k, v in night.comparable.items() if k in meta and meta[k] != v]
        if differs:
            notes.append(f"the baseline file was written with {', '.join(differs)}, not tonight's")
        if "metrics_version" not in meta:
            notes.append(_OLD_MEANING.format(what="the baseline file"))
        return baseline, f"file {args.baseline}"
    if args.reset_baseline:
        store.set_tags(night.uri, night.run_id, {store.RESET: "true"})
        return None, "reset (--reset-baseline): tonight starts a new baseline"
    window = night.suite.window
    nights = store.past_nights(
        night.uri, night.experiment_id, limit=window, ok_only=True, exclude=night.run_id, **night.comparable
    )
    nights = store.since_reset(nights)
    if not nights:
        older = {**night.comparable, "metrics_version": None}
        earlier = store.past_nights(
            night.uri, night.experiment_id, limit=1, ok_only=True, exclude=night.run_id, **older
        )
        if earlier:  # comparable in all but what the quality metrics mean
            notes.append(_OLD_MEANING.format(what="earlier nights"))
            return None, "new baseline: earlier nights scored quality.probe_acc and knn_acc on the test split"
        return None, "none yet: no earlier successful night on this device kind, smoke flag and suite"
    return (
        rolling_median([n.metrics for n in nights], window),
        f"median of the last {len(nights)} successful night(s) (window {window})",
    )


def write_report(
    night: Night, rows: list[Row], status: str, source: str, notes: list[str], result: Any
) -> None:
    """verdict.md/csv, night.json and the trend plots of the last comparable nights, in ``night.out``."""
    from orchestrator.nightly import store
    from orchestrator.nightly.report import plot_trends, write_night, write_verdict

    suite, env = night.suite, night.env
    kind = "smoke" if suite.smoke else "full"
    header = [
        f"night: {night.run_name} ({night.now.isoformat(timespec='seconds')})",
        f"suite: {suite.path}, {kind}, fingerprint {suite.fingerprint}",
        f"machine: {night.device} on host {env['jepa.host']}",
        f"code: git {env['jepa.git_sha']}, torch {env['jepa.torch_version']}, ray {env['jepa.ray_version']}, "
        f"mlflow {env['jepa.mlflow_version']}, timm {env['jepa.timm_version']}",
        f"baseline: {source}",
        f"verdict: {status}",
        f"MLflow run: {night.run_id} (experiment {suite.experiment})",
    ]
    write_verdict(night.out, rows, header, notes)
    body = {"mlflow_run_id": night.run_id, "tags": night.tags, "metrics": result.metrics}
    body.update(section_s=result.section_s, notes=result.notes, failures=result.failures)
    write_night(night.out, body)
    history = store.past_nights(
        night.uri,
        night.experiment_id,
        limit=suite.trend_nights - 1,
        ok_only=False,
        exclude=night.run_id,
        **night.comparable,
    )
    series = [(n.start, n.metrics, n.status == store.STATUS_REGRESSION) for n in reversed(history)]
    series.append((night.now, result.metrics, status == store.STATUS_REGRESSION))
    plot_trends(night.out, rows, series, f"{night.device}, {kind} suite {suite.fingerprint}")


def print_verdict(
    night: Night,
    rows: list[Row],
    status: str,
    source: str,
    no_baseline: bool,
    notes: list[str],
    failures: dict[str, str],
) -> None:
    """The table, one line per regression (metric, baseline, current, tolerance) or inconclusive timing
    metric (with the reason), and where to look next."""
    from orchestrator.tracking import runs as tracking

    print(f"\nbaseline: {source}")
    print(markdown_table(rows))
    for note in notes:
        print(f"note: {note}")
    for row in [*inconclusive(rows), *regressions(rows)]:
        print(verdict_line(row))
    for section, reason in failures.items():
        print(f"REGRESSION: section {section} failed: {reason}")
    unsure = len(inconclusive(rows))
    if no_baseline and status == "ok":
        print("verdict: ok (nothing to compare with yet: tonight's numbers establish the baseline)")
    elif unsure and status == "ok":
        print(f"verdict: ok ({unsure} timing metric(s) inconclusive on this machine tonight, see above)")
    else:
        print(f"verdict: {status}")
    hint, url = tracking.ui_hint(night.uri, night.experiment_id)
    print(f"report: {night.out}\nMLflow run: {night.run_id}\n{hint}\n{url}")


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    """Nested settings as dotted MLflow params (``quality.overrides.train.epochs``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}{k}.", v))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for v in value:
            out.update(_flat(f"{prefix}{v.get('device', len(out))}.", v))
        return out
    return {prefix.rstrip("."): value}


def _suite_yaml(suite: Suite) -> str:
    """The effective suite (``--smoke`` applied) as it was measured, with its tolerances."""
    body = {
        "source": str(suite.path),
        "smoke": suite.smoke,
        "fingerprint": suite.fingerprint,
        **suite.settings,
        "tolerances": {k: vars(v) for k, v in suite.tolerances.items()},
    }
    return yaml.safe_dump(body, sort_keys=False)


if __name__ == "__main__":
    sys.exit(main())
