"""The verdict as text: the table (pandas), one line per flagged metric, one line per section's peaks.

The same strings go to the terminal, to ``verdict.md`` and (the tolerance column) to ``verdict.csv``; the
table is GitHub markdown, which also reads as plain text in a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from orchestrator.nightly.metrics import OTHERS, SPREAD, scaling, section_of, unit_of
from orchestrator.nightly.verdict import FAILING, Row, gflops

# The columns of the verdict table, in display order (also the header of an empty table).
COLUMNS = ("metric", "unit", "baseline", "current", "change", "normalised", "tolerance", "limit", "verdict")


def fmt(value: float | None) -> str:
    """A number as shown in the table and the verdict lines (4 significant digits), ``-`` for none."""
    return "-" if value is None else f"{value:.4g}"


def table_rows(rows: Sequence[Row]) -> list[dict[str, str]]:
    """The verdict table as strings, one dict per metric (keys: :data:`COLUMNS`)."""
    out = []
    for r in rows:
        change = r.change
        out.append(
            {
                "metric": r.metric,
                "unit": unit_of(r.metric),
                "baseline": fmt(r.baseline),
                "current": fmt(r.current),
                "change": "-" if change is None else f"{change * 100:+.1f}%",
                "normalised": fmt(r.normalised),
                "tolerance": "-" if r.tolerance is None else r.tolerance.allowed_move(),
                "limit": fmt(r.limit),
                "verdict": r.verdict,
            }
        )
    return out


def markdown_table(rows: Sequence[Row]) -> str:
    """The verdict table in GitHub markdown, one row per metric in the order given.

    The cells are already formatted strings: ``disable_numparse`` keeps tabulate from reading ``1e+05`` back
    as a number and reformatting it.
    """
    frame = pd.DataFrame(table_rows(rows), columns=list(COLUMNS))
    return frame.to_markdown(index=False, tablefmt="github", disable_numparse=True)


def verdict_line(row: Row) -> str:
    """``REGRESSION: <metric>: baseline .., current .. (.. at the baseline's peak), tolerance .. (limit ..)``.

    Meant for regression and inconclusive rows (``MISSING`` reads as a regression); a timing row also says
    how it was compared.
    """
    unit = f" {unit_of(row.metric)}" if unit_of(row.metric) else ""
    head = "REGRESSION" if row.verdict in FAILING else row.verdict.upper()
    if row.current is None:
        return f"{head}: {row.metric}: baseline {fmt(row.baseline)}{unit}, not measured tonight"
    tol = row.tolerance.allowed_move() if row.tolerance else "-"
    at_peak = f" ({fmt(row.normalised)}{unit} at the baseline's peak)" if row.normalised is not None else ""
    line = (
        f"{head}: {row.metric}: baseline {fmt(row.baseline)}{unit}, current {fmt(row.current)}{unit}"
        f"{at_peak}, tolerance {tol} (limit {fmt(row.limit)}{unit})"
    )
    return f"{line}; {row.comparison}" if row.comparison else line


def peak_lines(rows: Sequence[Row], current: Mapping[str, float]) -> list[str]:
    """One line per section with judged timing metrics: which comparison they got, and the peaks behind it."""
    out = []
    for section in sorted({section_of(r.metric) for r in rows if r.tolerance and scaling(r.metric)}):
        judged = [r for r in rows if r.tolerance and scaling(r.metric) and r.metric.startswith(f"{section}.")]
        with_peaks = [r for r in judged if r.peaks is not None]
        if with_peaks:
            base, now = with_peaks[0].peaks
            spread, others = current.get(f"{section}.{SPREAD}"), current.get(f"{section}.{OTHERS}")
            steady = f", tonight's samples within {spread:.2f}x" if spread else ""
            steady += f", other processes {others:.0%} of the CPUs" if others is not None else ""
            out.append(
                f"timing metrics of {section}: compared normalised by the same-run matmul peak, "
                f"{gflops(now)} tonight vs {gflops(base)} baseline ({now / base:.2f}x{steady})"
            )
        elif any(r.comparison for r in judged):
            out.append(f"timing metrics of {section}: {next(r.comparison for r in judged if r.comparison)}")
    return out
