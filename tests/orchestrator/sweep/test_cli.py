"""The command line: exit 2 with one line on every kind of mistake, ``--dry-run``, the tracking URI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.sweep.cli import main
from orchestrator.tracking.runs import redact_uri, resolve_tracking_uri
from tests.orchestrator.conftest import run_sweep
from tests.orchestrator.sweep.test_spec import BASE, MALFORMED, REPO, write


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_sweep(list(args), cwd, {**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bad_method.yaml"], "'method'"),
        (["unknown_param_key.yaml", "--dry-run"], "'parameters.mask.ratoi'"),
        (["good.yaml", "--set", "mask.ratio"], "KEY=VALUE"),
        (["good.yaml", "--set", "train.epochs=-1"], "train.epochs"),
        (["missing.yaml"], "cannot read"),
        (["folder.yaml"], "cannot read sweep file (Is a directory)"),
        (["binary.yaml"], "not UTF-8"),
        (["good.yaml", "--set", "model.dept=3"], "did you mean 'model.depth'"),
        (["good.yaml", "--set", "train.epochs=abc"], "expects an integer"),
        (["good.yaml", "--set", "train.epochs=!!python/object/apply:os.system [echo]"], "--set train.epochs"),
        (["good.yaml", "--set", "=3"], "KEY=VALUE"),
        (["good.yaml", "--set", "predictor.depth=2"], "swept"),
        (["good.yaml", "--smoke", "--set", "data.subset=-2"], "data.subset"),
    ],
)
def test_cli__invalid_input_exits_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    for case in ("bad_method", "unknown_param_key"):
        write(tmp_path, MALFORMED[case][0], f"{case}.yaml")
    write(tmp_path, BASE, "good.yaml")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "binary.yaml").write_bytes(b"name: \xff\xfe bad\n")
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and expected in lines[0]


def test_cli__dry_run_prints_table_and_estimate(tmp_path: Path) -> None:
    proc = cli(str(REPO / "sweeps" / "mask_ratio.yaml"), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("profile ")  # which profile a run here would pick, and why
    assert lines[1].split() == ["#", "config_id", "mask.ratio", "seed"]
    assert len([ln for ln in lines[2:] if ln[:1].isdigit()]) == 9
    assert "estimated wall time" in proc.stdout and "expected runtime" in proc.stdout
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()


def test_main__dry_run_imports_neither_ray_nor_mlflow_nor_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from orchestrator.sweep.cli import main; "
        "rc = main([sys.argv[1], '--dry-run', '--smoke']); "
        "heavy = [m for m in ('ray', 'mlflow', 'torch') if m in sys.modules]; "
        "assert rc == 0 and not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "sweeps" / "joint_optuna.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Optuna TPE" in proc.stdout


def test_main__resume_without_interrupted_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, BASE)
    assert main([str(path), "--resume", "--storage-path", str(tmp_path / "results")]) == 2
    assert "no interrupted run" in capsys.readouterr().err


# ---- tracking URI and estimates ---------------------------------------------------------------------------
def test_resolve_tracking_uri__precedence_and_absolute_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None, None, tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert resolve_tracking_uri(None, "sqlite:///x.db", tmp_path) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_tracking_uri(None, "runs/mlruns", tmp_path) == (tmp_path / "runs" / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert resolve_tracking_uri(None, "sqlite:///x.db", tmp_path) == "http://127.0.0.1:5001"
    assert resolve_tracking_uri("http://h:1", "sqlite:///x.db", tmp_path) == "http://h:1"


def test_redact_uri__hides_password() -> None:
    assert redact_uri("https://ann:s3cret@mlflow.example/x") == "https://ann:***@mlflow.example/x"
    assert redact_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_overhead_line__first_step_of_any_trial_and_its_last_report() -> None:
    from types import SimpleNamespace

    from orchestrator.sweep.overhead import FIRST_STEP_KEY, REPORTED_KEY, overhead_line, parse_overhead_line

    results = [
        SimpleNamespace(metrics={FIRST_STEP_KEY: 112.0, REPORTED_KEY: 150.0}),
        SimpleNamespace(metrics={FIRST_STEP_KEY: 110.5, REPORTED_KEY: 171.0}),
        SimpleNamespace(metrics={}),  # failed before it reported anything
    ]
    line = overhead_line(results, started_at=100.0, now=175.5)
    assert line == (
        "overhead: start-up 10.5 s (command to the first trial's first step), "
        "wind-down 4.5 s (the last trial's last epoch to this line)"
    )
    assert overhead_line([SimpleNamespace(metrics={REPORTED_KEY: 1.0})], 0.0, 2.0) is None  # never stepped
    assert parse_overhead_line(f"report: x\n{line}\nmlflow ui ...") == (10.5, 4.5)  # what the nightly reads
    assert parse_overhead_line("overhead: start-up soon") is None


def test_estimate_needs_cpu_rate__not_on_an_address_whose_cluster_decides(monkeypatch):
    from orchestrator.sweep import cli

    for gpus in (0, 1):
        monkeypatch.setattr(cli, "local_gpus", lambda gpus=gpus: gpus)
        for profile in ("cpu", "smoke"):  # named: the estimate will time the CPU wherever the trials run
            assert all(cli._estimate_needs_cpu_rate(profile, address) for address in (None, "h:6379"))
        assert not cli._estimate_needs_cpu_rate("gpu", None)
        assert not cli._estimate_needs_cpu_rate(None, "h:6379")  # the cluster's GPUs decide, later
        assert cli._estimate_needs_cpu_rate(None, None) == (gpus == 0)  # a local cluster has this machine's
