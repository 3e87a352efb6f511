"""The report folder: verdict.md and verdict.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from orchestrator.nightly.render import peak_lines
from orchestrator.nightly.tolerance import Tolerance
from orchestrator.nightly.verdict import OK, judge

WALL = "quality.wall_time_s"
LOWER_75 = Tolerance("rel", 0.75, "lower")


def test_write_verdict__the_csv_keeps_raw_values_beside_the_peaks(tmp_path: Path) -> None:
    from orchestrator.nightly.report import write_verdict

    base = {WALL: 10.1, "quality.matmul_peak_gflops": 103.0}
    rows = judge({WALL: 20.1, "quality.matmul_peak_gflops": 49.0}, base, {WALL: LOWER_75})
    md = write_verdict(tmp_path, rows, ["machine: test"], peak_lines(rows, {}))
    (wall,) = [r for r in csv.DictReader((tmp_path / "verdict.csv").open()) if r["metric"] == WALL]
    assert float(wall["current"]) == 20.1 and float(wall["current_normalised"]) == pytest.approx(9.562, 1e-3)
    assert (wall["peak_baseline_gflops"], wall["peak_current_gflops"]) == ("103.0", "49.0")
    assert wall["verdict"] == OK and wall["comparison"].startswith("normalised")
    text = md.read_text()
    assert "| normalised" in text and "timing metrics of quality: compared normalised" in text
