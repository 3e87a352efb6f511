"""The nightly benchmark: verdict rules (pure), suite validation, and the CLI's exit codes end to end.

The end-to-end tests run a test-local suite (sklearn's digits, a 1-block ViT, 1 epoch, 2 bench steps, no
overhead section) against a fresh sqlite MLflow store; they check the plumbing and the verdict, not speed.
Throughput on a shared CI machine swings by several x between runs, so the test suite's img/s tolerance is
wide (-90%) and the planted regression is far beyond it (a baseline 100x the measured img/s). A timing metric
is inconclusive, not a regression, when other processes took more of the CPU than its tolerance allows
(test_nightly_contention.py), so the planted night runs alone, not beside another night.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.nightly.measure import overhead_sweep_text
from orchestrator.nightly.suite import SuiteError, load_suite
from orchestrator.nightly.verdict import (
    INFO,
    MISSING,
    NEW,
    OK,
    REGRESSION,
    BaselineError,
    Tolerance,
    judge,
    markdown_table,
    read_baseline,
    regressions,
    rolling_median,
    write_baseline,
)

REPO = Path(__file__).resolve().parents[3]
TINY_MODEL = {
    "data.name": "digits",
    "data.image_size": 8,
    "model.patch_size": 2,
    "model.embed_dim": 32,
    "model.depth": 1,
    "model.num_heads": 2,
    "predictor.depth": 1,
    "predictor.embed_dim": 32,
    "predictor.num_heads": 2,
    "train.batch_size": 64,
}
TINY_SUITE: dict[str, Any] = {
    "experiment": "nightly",
    "bench": {"cpu": {"overrides": TINY_MODEL, "steps": 2, "warmup": 1, "peak_size": 256}},
    "quality": {
        "overrides": {
            **TINY_MODEL,
            "data.subset": 256,
            "train.epochs": 1,
            "train.device": "cpu",
            "eval.train_subset": 200,
            "eval.test_subset": 100,
            "eval.every": 0,
        },
        "seeds": [0],
    },
    "overhead": {"enabled": False},
    "tolerances": {
        "bench_cpu.img_per_s": {"rel": 0.9, "direction": "higher"},
        "quality.probe_acc": {"abs": 0.1, "direction": "higher"},
        "quality.wall_time_s": {"rel": 5.0, "direction": "lower"},
    },
}
HIGHER_REL = Tolerance("rel", 0.15, "higher")
HIGHER_ABS = Tolerance("abs", 0.02, "higher")
LOWER_REL = Tolerance("rel", 0.2, "lower")


def write_yaml(path: Path, body: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def verdicts(current: dict, baseline: dict | None, tolerances: dict) -> dict[str, str]:
    return {r.metric: r.verdict for r in judge(current, baseline, tolerances)}


# ---- verdict rules ---------------------------------------------------------------------------------
def test_judge__relative_drop_beyond_tolerance_is_a_regression() -> None:
    tol = {"bench_cpu.img_per_s": HIGHER_REL}
    assert verdicts({"bench_cpu.img_per_s": 84.0}, {"bench_cpu.img_per_s": 100.0}, tol) == {
        "bench_cpu.img_per_s": REGRESSION
    }
    assert (
        verdicts({"bench_cpu.img_per_s": 86.0}, {"bench_cpu.img_per_s": 100.0}, tol)["bench_cpu.img_per_s"]
        == OK
    )
    assert (
        verdicts({"bench_cpu.img_per_s": 500.0}, {"bench_cpu.img_per_s": 100.0}, tol)["bench_cpu.img_per_s"]
        == OK
    )


def test_judge__absolute_points_for_accuracy() -> None:
    tol = {"quality.probe_acc": HIGHER_ABS}
    assert verdicts({"quality.probe_acc": 0.805}, {"quality.probe_acc": 0.82}, tol)["quality.probe_acc"] == OK
    assert (
        verdicts({"quality.probe_acc": 0.795}, {"quality.probe_acc": 0.82}, tol)["quality.probe_acc"]
        == REGRESSION
    )


def test_judge__lower_is_better_fails_on_a_rise_only() -> None:
    tol = {"quality.wall_time_s": LOWER_REL}
    assert verdicts({"quality.wall_time_s": 125.0}, {"quality.wall_time_s": 100.0}, tol) == {
        "quality.wall_time_s": REGRESSION
    }
    assert (
        verdicts({"quality.wall_time_s": 119.0}, {"quality.wall_time_s": 100.0}, tol)["quality.wall_time_s"]
        == OK
    )
    assert (
        verdicts({"quality.wall_time_s": 10.0}, {"quality.wall_time_s": 100.0}, tol)["quality.wall_time_s"]
        == OK
    )


def test_judge__relative_tolerance_uses_the_baselines_magnitude() -> None:
    assert Tolerance("rel", 0.5, "higher").limit(-10.0) == -15.0
    assert Tolerance("rel", 0.5, "lower").limit(-10.0) == -5.0


def test_judge__missing_metric_fails_and_new_metric_establishes() -> None:
    tol = {"quality.probe_acc": HIGHER_ABS, "bench_cpu.img_per_s": HIGHER_REL}
    got = verdicts({"bench_cpu.img_per_s": 100.0}, {"quality.probe_acc": 0.8}, tol)
    assert got == {"quality.probe_acc": MISSING, "bench_cpu.img_per_s": NEW}
    rows = judge({"bench_cpu.img_per_s": 100.0}, {"quality.probe_acc": 0.8}, tol)
    assert [r.metric for r in regressions(rows)] == ["quality.probe_acc"]


def test_judge__no_baseline_at_all_is_new_not_a_regression() -> None:
    rows = judge(
        {"bench_cpu.img_per_s": 100.0, "quality.rankme": 30.0}, None, {"bench_cpu.img_per_s": HIGHER_REL}
    )
    assert {r.metric: r.verdict for r in rows} == {"bench_cpu.img_per_s": NEW, "quality.rankme": INFO}
    assert regressions(rows) == []


def test_judge__untoleranced_metrics_are_info_and_ignored_when_gone() -> None:
    got = verdicts({"quality.rankme": 1.0}, {"quality.rankme": 50.0, "quality.knn_acc": 0.7}, {})
    assert got == {"quality.rankme": INFO}


def test_judge__non_finite_current_value_is_a_regression() -> None:
    got = verdicts(
        {"quality.probe_acc": math.nan}, {"quality.probe_acc": 0.8}, {"quality.probe_acc": HIGHER_ABS}
    )
    assert got == {"quality.probe_acc": REGRESSION}


def test_judge__judged_rows_come_first_and_the_table_names_each_column() -> None:
    rows = judge({"a.x": 1.0, "z.y": 2.0}, {"z.y": 4.0}, {"z.y": Tolerance("rel", 0.1, "higher")})
    assert [r.metric for r in rows] == ["z.y", "a.x"]
    table = markdown_table(rows)
    header = table.splitlines()[0]
    for column in ("metric", "baseline", "current", "tolerance", "verdict"):
        assert column in header
    assert "| z.y" in table and "-10%" in table and REGRESSION in table


def test_rolling_median__newest_window_only_and_per_metric() -> None:
    nights = [{"a": 1.0, "b": 10.0}, {"a": 3.0}, {"a": 2.0, "b": 30.0}, {"a": 100.0, "b": 100.0}]
    assert rolling_median(nights, 3) == {"a": 2.0, "b": 20.0}
    assert rolling_median(nights, 1) == {"a": 1.0, "b": 10.0}
    with pytest.raises(ValueError):
        rolling_median(nights, 0)


def test_since_reset__a_reset_night_cuts_off_older_nights() -> None:
    from datetime import datetime, timezone

    from orchestrator.nightly.store import Night, since_reset

    def night(name: str, reset: bool = False) -> Night:
        return Night(name, datetime.now(timezone.utc), "ok", {}, reset)

    newest_first = [night("c"), night("b", reset=True), night("a")]
    assert [n.run_id for n in since_reset(newest_first)] == ["c", "b"]
    assert [n.run_id for n in since_reset(newest_first[2:])] == ["a"]


# ---- baseline files --------------------------------------------------------------------------------
def test_baseline_file__round_trip(tmp_path: Path) -> None:
    path = write_baseline(tmp_path / "b.json", {"x.y": 1.5, "x.z": 2}, {"device": "cpu:test x2"})
    metrics, meta = read_baseline(path)
    assert metrics == {"x.y": 1.5, "x.z": 2.0} and meta == {"device": "cpu:test x2"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"other": {}}', "'metrics' is required"),
        ('{"metrics": {}}', "non-empty"),
        ('{"metrics": {"a.b": "fast"}}', "metrics.a.b"),
        ('{"metrics": {"a.b": true}}', "metrics.a.b"),
        ('{"metrics": {"a.b": NaN}}', "finite"),
    ],
)
def test_baseline_file__invalid_is_one_line_naming_the_member(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(BaselineError) as err:
        read_baseline(path)
    assert fragment in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


# ---- suite file ------------------------------------------------------------------------------------
def test_load_suite__the_repository_suite_is_valid_in_both_modes() -> None:
    full = load_suite(REPO / "sweeps" / "nightly.yaml")
    smoke = load_suite(REPO / "sweeps" / "nightly.yaml", smoke=True)
    assert full.quality is not None and smoke.quality is not None
    assert {b.device for b in full.bench} == {"cpu", "cuda"}
    assert full.fingerprint != smoke.fingerprint
    # smoke overrides merge over the full section's overrides key by key
    assert smoke.quality.trainer.preset == full.quality.trainer.preset
    assert smoke.quality.trainer.config().train.epochs < full.quality.trainer.config().train.epochs
    assert smoke.tolerances["bench_cpu.img_per_s"].amount >= full.tolerances["bench_cpu.img_per_s"].amount


def test_load_suite__fingerprint_ignores_tolerances_but_not_settings(tmp_path: Path) -> None:
    a = load_suite(write_yaml(tmp_path / "a.yaml", TINY_SUITE))
    looser = {**TINY_SUITE, "tolerances": {"quality.probe_acc": {"abs": 0.5, "direction": "higher"}}}
    b = load_suite(write_yaml(tmp_path / "b.yaml", looser))
    longer = {**TINY_SUITE, "quality": {**TINY_SUITE["quality"], "seeds": [0, 1]}}
    c = load_suite(write_yaml(tmp_path / "c.yaml", longer))
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"bench": {"cpu": {"stepz": 3}}}, "bench.cpu.stepz"),
        ({"bench": {"gpu": {}}}, "bench.gpu"),
        ({"quality": {"overrides": {"mask.ratoi": 0.3}}}, "quality.overrides.mask.ratoi"),
        ({"quality": {"overrides": {"mask.ratio": 2.0}}}, "quality.overrides.mask.ratio"),
        ({"quality": {"preset": "fmnist_tpu"}}, "quality.preset"),
        ({"quality": {"seeds": []}}, "quality.seeds"),
        ({"overhead": {"enabled": "yes"}}, "overhead.enabled"),
        ({"tolerances": {"bench_cpu.img_per_sec": {"rel": 0.1, "direction": "higher"}}}, "img_per_sec"),
        ({"tolerances": {"quality.probe_acc": {"rel": 0.1, "abs": 0.1, "direction": "higher"}}}, "probe_acc"),
        ({"tolerances": {"quality.probe_acc": {"abs": -1, "direction": "higher"}}}, "quality.probe_acc.abs"),
        ({"tolerances": {"quality.probe_acc": {"abs": 0.1, "direction": "up"}}}, "direction"),
        ({"smoke": {"quality": {"overrides": {"train.epochs": -1}}}}, "smoke.quality.overrides.train.epochs"),
        ({"smoke": {"bench": {"cpu": {"steps": 0}}}}, "smoke.bench.cpu.steps"),
        ({"baseline": {"window": 0}}, "baseline.window"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_load_suite__invalid_key_is_one_line_naming_file_and_key(
    tmp_path: Path, body: dict, key: str
) -> None:
    path = write_yaml(tmp_path / "suite.yaml", {**TINY_SUITE, **body})
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert str(path) in message and key in message and "\n" not in message


def test_load_suite__unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("bench: [\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    for name, fragment in (
        ("bad.yaml", "invalid YAML"),
        ("list.yaml", "mapping"),
        ("none.yaml", "cannot read"),
    ):
        with pytest.raises(SuiteError, match=fragment):
            load_suite(tmp_path / name)


def test_overhead_sweep_text__is_a_valid_smoke_sweep_of_one_trial_per_seed(tmp_path: Path) -> None:
    from orchestrator.sweep.spec import load_spec, plan_sweep

    suite = load_suite(REPO / "sweeps" / "nightly.yaml", smoke=True)
    assert suite.overhead is not None
    path = tmp_path / "overhead.yaml"
    path.write_text(overhead_sweep_text(suite.overhead, "nightly-overhead"))
    plan = plan_sweep(load_spec(path), smoke=True)
    assert [t.seed for t in plan.trials] == list(suite.overhead.seeds)
    assert plan.max_concurrent_trials == 1 and plan.resources.gpu == 0
    cfg = plan.trial_config(plan.trials[0].params, plan.trials[0].seed)
    assert cfg.train.device == "cpu" and cfg.data.name == "digits"


# ---- the command line ------------------------------------------------------------------------------
def start_nightly(args: list[str], cwd: Path, db: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        MLFLOW_TRACKING_URI=f"sqlite:///{db}",
        PYTHONUNBUFFERED="1",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.nightly", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def nightly(args: list[str], cwd: Path, db: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return finish(start_nightly(args, cwd, db), timeout)


def assert_invalid(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("baseline_not_json", "invalid JSON"),
        ("baseline_non_numeric", "metrics.bench_cpu.img_per_s"),
        ("baseline_without_metrics", "'metrics' is required"),
        ("baseline_missing", "cannot read baseline file"),
        ("suite_bad_key", "bench.cpu.stepz"),
        ("suite_bad_yaml", "invalid YAML"),
        ("suite_missing", "cannot read suite file"),
        ("write_baseline_no_folder", "does not exist"),
        ("unknown_flag", "--bogus"),
    ],
)
def test_cli__invalid_input_exits_2_with_one_line(tmp_path: Path, case: str, fragment: str) -> None:
    suite = write_yaml(tmp_path / "suite.yaml", TINY_SUITE)
    baseline = tmp_path / "baseline.json"
    args = ["--suite", str(suite)]
    if case == "baseline_not_json":
        baseline.write_text("{'metrics': 1")
    elif case == "baseline_non_numeric":
        baseline.write_text(json.dumps({"metrics": {"bench_cpu.img_per_s": "fast"}}))
    elif case == "baseline_without_metrics":
        baseline.write_text(json.dumps({"bench_cpu.img_per_s": 100.0}))
    elif case == "suite_bad_key":
        write_yaml(suite, {**TINY_SUITE, "bench": {"cpu": {"stepz": 2}}})
    elif case == "suite_bad_yaml":
        suite.write_text("bench: [\n")
    elif case == "suite_missing":
        args = ["--suite", str(tmp_path / "nope.yaml")]
    elif case == "write_baseline_no_folder":
        args += ["--write-baseline", str(tmp_path / "no" / "such" / "b.json")]
    elif case == "unknown_flag":
        args += ["--bogus"]
    if case.startswith("baseline_"):
        args += ["--baseline", str(baseline)]
    proc = nightly(args, tmp_path, tmp_path / "mlflow.db", timeout=60)
    assert_invalid(proc, fragment)
    assert not (tmp_path / "mlflow.db").exists()  # rejected before any MLflow store was touched


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real nights of the tiny suite: a first one on a fresh store (writing its baseline file), then a rerun
    against that file, then a bench-only night against a planted baseline. One at a time: a night run beside
    another shares the CPU, and its timings would be inconclusive rather than a regression."""
    root = tmp_path_factory.mktemp("nightly")
    write_yaml(root / "suite.yaml", TINY_SUITE)
    first = nightly(["--suite", "suite.yaml", "--write-baseline", "first.json"], root, root / "mlflow.db")
    out: dict[str, Any] = {"root": root, "first": first}
    if first.returncode != 0:
        return out
    metrics, meta = read_baseline(root / "first.json")
    planted = {**metrics, "bench_cpu.img_per_s": metrics["bench_cpu.img_per_s"] * 100}
    write_baseline(root / "planted.json", planted, meta)
    bench_only = {**TINY_SUITE, "quality": {"enabled": False}}  # the planted number is all it needs measured
    bench_only["tolerances"] = {"bench_cpu.img_per_s": TINY_SUITE["tolerances"]["bench_cpu.img_per_s"]}
    write_yaml(root / "bench_only.yaml", bench_only)
    (root / "planted").mkdir()
    shutil.copy(
        root / "mlflow.db", root / "planted" / "mlflow.db"
    )  # its own store: no sqlite lock contention
    out["rerun"] = nightly(["--suite", "suite.yaml", "--baseline", "first.json"], root, root / "mlflow.db")
    out["planted"] = nightly(
        ["--suite", "../bench_only.yaml", "--baseline", "../planted.json"],
        root / "planted",
        root / "planted" / "mlflow.db",
    )
    return out


@pytest.mark.slow
def test_cli__first_night_establishes_the_baseline_and_records_it(nights: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    root, proc = nights["root"], nights["first"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "establish" in proc.stdout
    metrics, meta = read_baseline(root / "first.json")
    assert metrics["bench_cpu.img_per_s"] > 0 and 0 <= metrics["quality.probe_acc"] <= 1
    assert meta["smoke"] is False and meta["device"].startswith(("cpu:", "cuda:"))

    first_report = sorted((root / "reports" / "nightly").iterdir())[0]
    files = {p.name for p in first_report.iterdir()}
    assert {"verdict.md", "verdict.csv", "night.json", "trend_bench_cpu.img_per_s.png"} <= files
    assert "bench_cpu.img_per_s" in (first_report / "verdict.md").read_text()

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nightly")
    run = client.get_run(meta["mlflow_run_id"])
    assert run.info.experiment_id == exp.experiment_id and run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["jepa.nightly.status"] == "ok" and tags["jepa.nightly.smoke"] == "false"
    assert tags["jepa.nightly.device"] == meta["device"]
    for key in ("git_sha", "host", "torch_version", "ray_version", "mlflow_version", "timm_version"):
        assert tags[f"jepa.{key}"]
    assert run.data.metrics["bench_cpu.img_per_s"] == pytest.approx(metrics["bench_cpu.img_per_s"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert "report/verdict.md" in artifacts


@pytest.mark.slow
def test_cli__rerun_against_its_own_baseline_passes(nights: dict[str, Any]) -> None:
    assert nights["first"].returncode == 0, nights["first"].stdout + nights["first"].stderr
    proc = nights["rerun"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: ok" in proc.stdout and "REGRESSION" not in proc.stdout


@pytest.mark.slow
def test_cli__planted_throughput_regression_exits_1_naming_the_metric(nights: dict[str, Any]) -> None:
    assert nights["first"].returncode == 0, nights["first"].stdout + nights["first"].stderr
    proc = nights["planted"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("REGRESSION:")]
    assert "bench_cpu.img_per_s" in line and "baseline" in line and "current" in line and "tolerance" in line
    table_row = next(ln for ln in proc.stdout.splitlines() if ln.startswith("| bench_cpu.img_per_s "))
    assert REGRESSION in table_row and "-90%" in table_row


@pytest.mark.slow
def test_past_nights__only_comparable_successful_nights_newest_first(tmp_path: Path) -> None:
    from orchestrator.nightly import store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = store.open_experiment(uri, "nightly")
    base = {store.DEVICE: "cpu:test x2", store.SMOKE: "true", store.SUITE: "abc"}
    made = []
    for i, (tags, status) in enumerate(
        [
            ({}, "ok"),
            ({store.DEVICE: "cuda:other"}, "ok"),  # another device kind
            ({store.SMOKE: "false"}, "ok"),  # the full suite
            ({store.SUITE: "def"}, "ok"),  # other settings
            ({}, "regression"),  # never part of a baseline
            ({}, "ok"),
        ]
    ):
        time.sleep(0.01)  # distinct start times: the query orders by them
        run_id = store.start_night(uri, exp, f"n{i}", {**base, **tags}, {})
        store.log_metrics(uri, run_id, {"bench_cpu.img_per_s": float(i)})
        store.finish_night(uri, run_id, "FINISHED", {store.STATUS: status}, None)
        made.append(run_id)
    kw = {"device": "cpu:test x2", "smoke": True, "suite": "abc"}
    ok = store.past_nights(uri, exp, limit=7, ok_only=True, **kw)
    assert [n.run_id for n in ok] == [made[5], made[0]]
    assert rolling_median([n.metrics for n in ok], 7) == {"bench_cpu.img_per_s": 2.5}
    trend = store.past_nights(uri, exp, limit=7, ok_only=False, exclude=made[5], **kw)
    assert [n.run_id for n in trend] == [made[4], made[0]]
    # Nights logged before validation splits (no metrics-version tag) are not comparable with tonight's.
    assert store.past_nights(uri, exp, limit=7, ok_only=True, metrics_version="2", **kw) == []
    tagged = store.start_night(uri, exp, "n6", {**base, store.METRICS_VERSION: "2"}, {})
    store.finish_night(uri, tagged, "FINISHED", {store.STATUS: "ok"}, None)
    versioned = store.past_nights(uri, exp, limit=7, ok_only=True, metrics_version="2", **kw)
    assert [n.run_id for n in versioned] == [tagged]
