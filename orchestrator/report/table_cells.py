"""The cells of the report's tables as text: ``mean ± CI`` per metric, ``best − this`` with its interval, the
notes column, and the † that marks a figure computed from 2 seeds.

Each function takes a summary frame (:mod:`orchestrator.report.summary`) and returns the strings the report
shows; :class:`orchestrator.report.document.Doc` renders the resulting frames with pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.report.display import (
    METRIC_SPECS,
    display_labels,
    format_mean_ci,
    format_value,
    metric_spec,
)

TWO_SEEDS = "†"
TWO_SEED_NOTE = (
    "† computed from 2 seeds (of the configuration, or of either side of a difference): treat it as "
    "uninformative. A t interval of a mean over 2 seeds has 1 degree of freedom and reaches 12.7 standard "
    "errors either side of the mean."
)


def metric_columns(metric: str, trials: pd.DataFrame) -> list[str]:
    """The metrics a table shows, in order: the sweep's metric, its test-split figure beside it, then the
    other known metrics the trials logged (test beside validation)."""
    order = [metric, f"test_{metric}"] + [s.key for s in METRIC_SPECS]
    return [m for m in dict.fromkeys(order) if m in trials.columns or m == metric]


def summary_cells(
    table: pd.DataFrame, key_cols: list[str], metrics: list[str], labels: dict[str, str] | None = None
) -> pd.DataFrame:
    """Formats a summary table: key columns as values, each metric as ``mean ± CI`` under its unit label
    (or ``labels[metric]``), an interval from 2 seeds marked †."""
    out = pd.DataFrame({})
    for c in key_cols:
        names = display_labels(table[c])
        out[c] = [names[format_value(v)] for v in table[c]]
    two = (table["n"] == 2).to_numpy() if "n" in table else np.zeros(len(table), dtype=bool)
    for m in metrics:
        if f"{m}_mean" in table:
            spec = metric_spec(m)
            rows = zip(table[f"{m}_mean"], table[f"{m}_ci"], two, strict=True)
            out[(labels or {}).get(m, spec.label)] = [
                format_mean_ci(mean, half, spec) + (f" {TWO_SEEDS}" if mark and np.isfinite(half) else "")
                for mean, half, mark in rows
            ]
    return out


def marks_two_seeds(shown: pd.DataFrame) -> bool:
    """Whether any cell of a formatted table carries the 2-seed mark (the report then adds its note)."""
    return any(TWO_SEEDS in cell for column in shown.columns for cell in shown[column])


def diff_vs_best_cells(board: pd.DataFrame, metric: str) -> list[str]:
    """``+2.10 [+1.00, +3.20]`` per row (best minus this, display scale), ``best`` on the best row, † where
    either side has 2 seeds."""
    spec = metric_spec(metric)
    best_two = bool(len(board)) and board["n"].iloc[0] == 2
    adjusted = board[f"{metric}_seed_adjusted"].to_numpy(dtype=float)
    cells = []
    for i, row in enumerate(board.itertuples(index=False)):
        if i == 0 and np.isfinite(adjusted[0]):
            cells.append("best")
        elif row.n == 0 or not np.isfinite(adjusted[0]):  # nothing ran, or no comparison at all
            cells.append("–")
        elif np.isnan(row.diff_vs_best):
            cells.append("not compared")
        elif np.isnan(row.diff_ci_low):
            cells.append(f"{row.diff_vs_best * spec.scale:+,.{spec.decimals}f}")
        else:
            lo, hi = (f"{v * spec.scale:+,.{spec.decimals}f}" for v in (row.diff_ci_low, row.diff_ci_high))
            mark = f" {TWO_SEEDS}" if row.n == 2 or best_two else ""
            cells.append(f"{row.diff_vs_best * spec.scale:+,.{spec.decimals}f} [{lo}, {hi}]{mark}")
    return cells


def leaderboard_notes(board: pd.DataFrame) -> list[str]:
    """Per leaderboard row: its failed, stopped-early, legacy and collapsed trials, in words."""
    notes = []
    for row in board.itertuples(index=False):
        parts = [f"{row.failed} of {row.trials} seeds failed"] if row.failed else []
        parts += [f"{row.stopped_early} stopped early"] if row.stopped_early else []
        parts += [f"{row.legacy_apart} logged before validation splits"] if row.legacy_apart else []
        parts += [f"{row.collapsed} collapsed"] if row.collapsed else []
        notes.append("; ".join(parts))
    return notes
