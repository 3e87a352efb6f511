"""The nightly report: ``reports/nightly/<YYYY-MM-DD>[-HHMMSS]/`` with the verdict and the trends.

    verdict.md      the verdict table (metric, baseline, current, change, normalised, tolerance, limit,
                    verdict), a line per regression or inconclusive metric (with how it was compared), and
                    notes (which comparison each section's timing metrics got, with the peaks behind it)
    verdict.csv     the same table, numbers unformatted, with the peaks and how each metric was compared
    night.json      every metric measured tonight, with the machine and the code that produced them
    trend_<metric>.png   each judged metric over the last comparable nights (matplotlib Agg)

Figures are drawn on their own Agg canvas without pyplot, so no global backend state is touched.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.nightly.metrics import normalise, peak_of, scaling, unit_of
from orchestrator.nightly.render import markdown_table, verdict_line
from orchestrator.nightly.verdict import FAILING, INCONCLUSIVE, Row

DPI = 90


def night_dir(root: str | Path, now: datetime) -> Path:
    """``root/nightly/<YYYY-MM-DD>``; a second night on the same day gets ``-HHMMSS`` (then ``-2``, ...)."""
    base = Path(root) / "nightly"
    path = base / now.strftime("%Y-%m-%d")
    if path.exists():
        path = base / now.strftime("%Y-%m-%d-%H%M%S")
        k = 1
        while path.exists():
            k += 1
            path = base / f"{now.strftime('%Y-%m-%d-%H%M%S')}-{k}"
    path.mkdir(parents=True)
    return path


def write_verdict(out: Path, rows: Sequence[Row], header: Sequence[str], notes: Sequence[str]) -> Path:
    """``verdict.md`` (header lines, the table, notes) and ``verdict.csv``; returns the markdown path."""
    md = ["# Nightly benchmark", "", *(f"- {line}" for line in header), "", markdown_table(rows), ""]
    flagged = [verdict_line(r) for r in rows if r.verdict in (*FAILING, INCONCLUSIVE)]
    if flagged:
        md += ["## Regressions and inconclusive metrics", "", *(f"- {line}" for line in flagged), ""]
    if notes:
        md += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    md += [
        "Tolerances allow a move in the bad direction only: `-15%` on a higher-is-better metric fails when "
        "tonight is more than 15% below the baseline; `+0.02` on a lower-is-better one fails above baseline "
        "+ 0.02. `missing` (measured by the baseline, not tonight) fails too; `new` has no baseline yet; "
        "`info` is recorded, not judged. `normalised` is a timing metric's value tonight scaled to the "
        "baseline's same-run matmul peak (seconds x peak tonight / peak baseline, throughput x peak baseline "
        "/ peak tonight); the verdict holds that value to the tolerance. `inconclusive`: the raw and the "
        "normalised values do not both pass, and the peak moved by more than twice the tolerance, tonight's "
        "samples of it spread by more than the tolerance, or other processes took more of the CPU than the "
        "tolerance allows (`other_cpu_share`); it does not fail the night.",
        "",
    ]
    path = out / "verdict.md"
    path.write_text("\n".join(md), encoding="utf-8")
    with (out / "verdict.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["metric", "unit", "baseline", "current", "change_rel", "tolerance", "limit", "verdict"]
            + ["current_normalised", "peak_baseline_gflops", "peak_current_gflops", "comparison"]
        )
        for r in rows:
            peaks = ("", "") if r.peaks is None else (repr(r.peaks[0]), repr(r.peaks[1]))
            writer.writerow(
                [
                    r.metric,
                    unit_of(r.metric),
                    "" if r.baseline is None else repr(r.baseline),
                    "" if r.current is None else repr(r.current),
                    "" if r.change is None else f"{r.change:.6g}",
                    "" if r.tolerance is None else r.tolerance.allowed_move(),
                    "" if r.limit is None else repr(r.limit),
                    r.verdict,
                    "" if r.normalised is None else repr(r.normalised),
                    *peaks,
                    r.comparison,
                ]
            )
    return path


def write_night(out: Path, body: dict[str, Any]) -> Path:
    """``night.json``: ``body`` (tonight's metrics, tags, seconds per section, notes) as indented JSON."""
    path = out / "night.json"
    path.write_text(json.dumps(body, indent=1, default=str) + "\n")
    return path


def plot_trends(
    out: Path,
    rows: Sequence[Row],
    history: Sequence[tuple[datetime, dict[str, float], bool]],
    title: str,
) -> list[Path]:
    """One PNG per judged metric: its value over the nights, tonight last.

    A timing metric compared normalised also gets each night's value scaled to the baseline's peak (dashed):
    that is the series the baseline's limit applies to.

    Args:
        rows: Tonight's verdict (judged rows get a plot, with the baseline and the limit drawn).
        history: ``(start time, metrics, failed)`` per night, oldest first, tonight included last.
        title: Which machine and suite the nights come from (every figure says where its numbers come from).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    paths = []
    for row in rows:
        if row.tolerance is None:
            continue
        points = [(i, m[row.metric], bad) for i, (_, m, bad) in enumerate(history) if row.metric in m]
        if not points:
            continue
        fig = Figure(figsize=(6.4, 3.2), layout="constrained")
        ax = fig.add_subplot()
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, "o-", color="C0", markersize=4, label="night")
        if row.peaks is not None:
            key, base_peak = peak_of(row.metric), row.peaks[0]
            scaled = [
                (i, normalise(m[row.metric], scaling(row.metric), m[key], base_peak))
                for i, (_, m, _) in enumerate(history)
                if row.metric in m and m.get(key)
            ]
            if scaled:
                xs_n, ys_n = zip(*scaled, strict=True)
                ax.plot(xs_n, ys_n, "s--", color="C1", markersize=3, label="at the baseline's peak")
        bad = [p for p in points if p[2]]
        if bad:
            ax.plot(
                [p[0] for p in bad], [p[1] for p in bad], "x", color="C3", markersize=8, label="regression"
            )
        if row.current is not None:
            ax.plot(
                [len(history) - 1],
                [row.current],
                "*",
                color="C3" if row.verdict in FAILING else "C1" if row.verdict == INCONCLUSIVE else "C2",
                markersize=12,
                label="tonight",
            )
        if row.baseline is not None and row.limit is not None:
            ax.axhline(row.baseline, color="0.4", linestyle="--", linewidth=1, label="baseline")
            ax.axhline(
                row.limit,
                color="C3",
                linestyle=":",
                linewidth=1,
                label=f"limit ({row.tolerance.allowed_move()})",
            )
        ticks = sorted({0, len(history) - 1, *xs[:: max(1, len(xs) // 6)]})
        ax.set_xticks(ticks, [history[i][0].strftime("%m-%d %H:%M") for i in ticks], rotation=30, ha="right")
        unit = unit_of(row.metric)
        ax.set_ylabel(f"{row.metric} ({unit})" if unit else row.metric, fontsize=8)
        ax.set_title(f"{row.metric}: last {len(history)} nights\n{title}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        FigureCanvasAgg(fig)
        path = out / f"trend_{re.sub(r'[^A-Za-z0-9_.-]+', '_', row.metric)}.png"
        fig.savefig(path, dpi=DPI)
        paths.append(path)
    return paths
