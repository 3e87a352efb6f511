"""The verdict as text: the markdown table (pandas) and the lines that name a regression."""

from __future__ import annotations

from orchestrator.nightly.render import markdown_table, verdict_line
from orchestrator.nightly.tolerance import Tolerance
from orchestrator.nightly.verdict import REGRESSION, judge


def test_judge__judged_rows_come_first_and_the_table_names_each_column() -> None:
    rows = judge({"a.x": 1.0, "z.y": 2.0}, {"z.y": 4.0}, {"z.y": Tolerance("rel", 0.1, "higher")})
    assert [r.metric for r in rows] == ["z.y", "a.x"]
    table = markdown_table(rows)
    header = table.splitlines()[0]
    for column in ("metric", "baseline", "current", "tolerance", "verdict"):
        assert column in header
    assert "| z.y" in table and "-10%" in table and REGRESSION in table


def test_markdown_table__github_markdown_with_the_cells_as_formatted() -> None:
    rows = judge({"bench_cpu.img_per_s": 12345.678}, {"bench_cpu.img_per_s": 1e6}, {})
    assert markdown_table(rows).splitlines() == [
        "| metric              | unit   | baseline   | current   | change   | normalised   | tolerance   "
        "| limit   | verdict   |",
        "|---------------------|--------|------------|-----------|----------|--------------|-------------"
        "|---------|-----------|",
        "| bench_cpu.img_per_s | img/s  | 1e+06      | 1.235e+04 | -98.8%   | -            | -           "
        "| -       | info      |",
    ]
    empty = markdown_table([]).splitlines()
    assert len(empty) == 2 and empty[0].startswith("| metric ") and "verdict" in empty[0]


def test_verdict_line__names_metric_baseline_current_and_tolerance() -> None:
    tol = {"quality.probe_acc": Tolerance("abs", 0.02, "higher")}
    (row,) = judge({"quality.probe_acc": 0.7}, {"quality.probe_acc": 0.8}, tol)
    assert verdict_line(row) == (
        "REGRESSION: quality.probe_acc: baseline 0.8 fraction, current 0.7 fraction, tolerance -0.02 "
        "(limit 0.78 fraction)"
    )
    (gone,) = judge({}, {"quality.probe_acc": 0.8}, tol)
    assert verdict_line(gone) == "REGRESSION: quality.probe_acc: baseline 0.8 fraction, not measured tonight"
