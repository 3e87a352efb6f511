"""The nightly's command line end to end: exit 2 on invalid input, then real nights of the tiny suite
(tests/orchestrator/nightly/tiny_suite.py) against a fresh sqlite MLflow store.

The planted regression is far beyond the tiny suite's wide img/s tolerance (a baseline 100x the measured
img/s). A timing metric is inconclusive, not a regression, when other processes took more of the CPU than
its tolerance allows (test_contention.py), so the planted night runs alone, not beside another night.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.nightly.baseline import read_baseline, write_baseline
from orchestrator.nightly.verdict import REGRESSION
from tests.orchestrator.nightly.tiny_suite import REPO, TINY_SUITE, finish, write_yaml


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


def test_cli__main_is_the_console_script_and_returns_the_exit_status(tmp_path: Path) -> None:
    import tomllib

    from orchestrator.nightly.cli import main

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["jepa-nightly"] == "orchestrator.nightly.cli:main"
    suite = write_yaml(tmp_path / "suite.yaml", {**TINY_SUITE, "bench": {"cpu": {"stepz": 2}}})
    assert main(["--suite", str(suite)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == 2


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
