"""One night of the nightly benchmark: open its MLflow run, measure, record, judge, report.

The command line around it is orchestrator.nightly.cli's; the sections are orchestrator.nightly.measure's; the
MLflow records orchestrator.nightly.store's. MLflow, torch and Ray are imported inside the functions that use
them, after every input has been checked.
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

from orchestrator.nightly.baseline import rolling_median, write_baseline
from orchestrator.nightly.render import markdown_table, peak_lines, verdict_line
from orchestrator.nightly.suite import Suite
from orchestrator.nightly.verdict import Row, inconclusive, judge, regressions
from orchestrator.tracking.runs import CURRENT_METRICS_VERSION


class Clock:
    """Progress lines with the time since the night started: ``[nightly 3:07] <message>``."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, message: str) -> None:
        s = int(self.elapsed)
        print(f"[nightly {s // 60:d}:{s % 60:02d}] {message}", flush=True)


@dataclass
class NightRun:
    """Tonight's run: where it is recorded (MLflow run, report folder) and what produced it."""

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

    log = Clock()
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


def open_night(suite: Suite, args: argparse.Namespace, log: Clock) -> NightRun | int:
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
    return NightRun(suite, uri, experiment_id, run_id, run_name, device, env, tags, now, out)


_OLD_MEANING = (
    "{what} scored quality.probe_acc and quality.knn_acc on the test split; they are now scored on a "
    "validation split carved from the training split (the test figures are quality.test_probe_acc and "
    "quality.test_knn_acc), so tonight starts a new baseline for them"
)


_OLD_KIND = (
    "earlier nights on this machine were recorded under the device kind {legacy!r}, which named no vector "
    "instruction set and so put CPUs of one model name with and without AVX-512 together; tonight is "
    "recorded as {device!r} and starts a new baseline"
)


def choose_baseline(
    night: NightRun, args: argparse.Namespace, file_baseline: tuple[dict, dict] | None, notes: list[str]
) -> tuple[dict[str, float] | None, str]:
    """The baseline metrics (None: there is none) and a line saying where they come from."""
    from orchestrator.nightly import measure, store

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
        legacy = {**night.comparable, "device": measure.device_kind(with_capability=False)}
        if legacy["device"] != night.device and store.past_nights(
            night.uri, night.experiment_id, limit=1, ok_only=True, exclude=night.run_id, **legacy
        ):
            notes.append(_OLD_KIND.format(legacy=legacy["device"], device=night.device))
            return None, "new baseline: earlier nights named the device kind without its instruction set"
        return None, "none yet: no earlier successful night on this device kind, smoke flag and suite"
    return (
        rolling_median([n.metrics for n in nights], window),
        f"median of the last {len(nights)} successful night(s) (window {window})",
    )


def write_report(
    night: NightRun, rows: list[Row], status: str, source: str, notes: list[str], result: Any
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
    night: NightRun,
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
