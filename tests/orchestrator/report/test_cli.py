"""Tests of ``python -m orchestrator.report``: exit codes, one-line errors, the printed path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.report import cli, fetch


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "nope"], "unknown experiment 'nope'"),
        (["--experiment", "ema_momentum", "--run-id", "0" * 32], "no run '" + "0" * 32),
    ],
)
def test_main__bad_input_one_line_exit_2(
    store: dict[str, Any], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.main([*args, "--tracking-uri", store["uri"]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_main__missing_sqlite_store_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert fetch.resolve_tracking_uri(None) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert cli.main(["--experiment", "x"]) == 2
    assert "no MLflow database" in capsys.readouterr().err and not (tmp_path / "mlflow.db").exists()


def test_main__prints_report_path(
    store: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(["--experiment", "ema_momentum", "--out", str(tmp_path), "--tracking-uri", store["uri"]])
        == 0
    )
    printed = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed.parent == tmp_path / "ema_momentum" and (printed / "report.md").is_file()
