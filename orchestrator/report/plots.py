"""Plots for sweep reports: metrics against a parameter, seeds across it, learning curves, parallel
coordinates and parameter importance, each written as a PNG next to the report.

Figures are built without pyplot and drawn on their own Agg canvas, so no global backend or figure registry is
touched: safe to call from a Ray driver, a thread or a test, with or without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from orchestrator.report.display import MetricSpec, display_labels, format_value, level_sort_key, metric_spec
from orchestrator.report.importance import Importance

DPI = 90  # small PNGs: the HTML report embeds every one of them
MAX_LINES = 12  # more curves than this in one panel are unreadable


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)  # the Agg backend for this figure only, whatever backend pyplot users chose
    fig.savefig(path, dpi=DPI)  # constrained layout already fits labels: no second draw for a tight bbox
    return path


def plot_metric_vs_param(table: pd.DataFrame, param: str, metrics: Sequence[str], path: Path) -> Path:
    """One panel per metric: mean over seeds with 95% CI error bars at each value of ``param``."""
    metrics = [m for m in metrics if f"{m}_mean" in table.columns]
    fig = Figure(figsize=(3.2 * max(len(metrics), 1), 3.0), layout="constrained")
    names = display_labels(table[param])
    labels = [names[format_value(v)] for v in table[param]]
    x = np.arange(len(labels))
    for i, m in enumerate(metrics):
        spec = metric_spec(m)
        ax = fig.add_subplot(1, len(metrics), i + 1)
        mean = table[f"{m}_mean"].to_numpy(dtype=float) * spec.scale
        ci = np.nan_to_num(table[f"{m}_ci"].to_numpy(dtype=float) * spec.scale)
        ax.errorbar(x, mean, yerr=ci, fmt="o-", capsize=4, color="C0")
        ax.set_xticks(x, labels, rotation=30 if max(map(len, labels), default=0) > 6 else 0, ha="right")
        ax.set_title(spec.label, fontsize=10)
        ax.set_xlabel(param)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Metrics vs {param} (mean ± 95% CI over seeds)", fontsize=11)
    return _save(fig, path)


def plot_per_seed(
    seeds: pd.DataFrame,
    order: Sequence[str],
    names: dict[str, str],
    param: str,
    metric: str,
    path: Path,
    label: str | None = None,
) -> Path:
    """One line per seed through ``metric`` at each level of ``param`` (a
    :func:`orchestrator.report.seeds.per_seed` frame), and the mean over those seeds thick in black: how far
    the seed moves the metric beside how far the setting does, which a mean ± CI does not show.

    Args:
        order: Level labels along the x axis (the parameter table's order); ``names`` gives their text.
        label: The y axis label (default: the metric's name with its unit).
    """
    spec = metric_spec(metric)
    x = {level: k for k, level in enumerate(order)}
    fig = Figure(figsize=(6.0, 3.3), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    many = seeds["seed"].nunique() > MAX_LINES  # a legend row per seed would not fit: gray, one entry for all
    for j, (seed, rows) in enumerate(seeds[seeds["level"].isin(x)].groupby("seed")):
        rows = rows.sort_values("level", key=lambda levels: levels.map(x))
        text = ("each seed" if j == 0 else None) if many else f"seed {seed}"
        color = "0.6" if many else f"C{j % 10}"
        ax.plot(rows["level"].map(x), rows["value"] * spec.scale, "o-", color=color, lw=1, label=text)
    mean = seeds.groupby("level")["value"].mean().reindex(list(order)) * spec.scale
    # Under the seeds' lines, so a seed on the mean still shows.
    ax.plot(range(len(order)), mean, "s-", color="black", lw=2.5, zorder=1.5, label="mean over seeds")
    labels = [names.get(level, level) for level in order]
    tilt = max(map(len, labels), default=0) > 6
    ax.set_xticks(range(len(order)), labels, rotation=30 if tilt else 0, ha="right" if tilt else "center")
    ax.set_xlabel(param)
    ax.set_ylabel(label or spec.label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{metric} per seed across {param}", fontsize=10)
    return _save(fig, path)


def plot_curves(
    panels: Sequence[tuple[MetricSpec, pd.DataFrame]],
    order: Sequence[str],
    legend_title: str,
    title: str,
    path: Path,
    hline: tuple[float, str] | None = None,
    singles: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    names: dict[str, str] | None = None,
) -> Path:
    """Per-epoch curves, one line per group with a 95% CI band over seeds.

    Args:
        panels: (metric spec, frame from :func:`orchestrator.report.frames.learning_curves`) per panel.
        order: Group labels in legend order; only the first :data:`MAX_LINES` are drawn.
        legend_title: Usually the swept parameter.
        title: Figure title.
        path: PNG path.
        hline: Optional (y, label) reference line drawn in every panel, e.g. RankMe's collapse threshold.
        singles: (steps, values) of single trials drawn thin in red in every panel, e.g. collapsed trials,
            which a mean over seeds would hide.
        names: Legend text per group label (default: the label).
    """
    fig = Figure(figsize=(max(4.5 * len(panels), 7.0), 3.3), layout="constrained")
    for i, (spec, curves) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for j, group in enumerate(order[:MAX_LINES]):
            rows = curves[curves["group"] == group]
            if rows.empty:
                continue
            mean = rows["mean"].to_numpy(dtype=float) * spec.scale
            band = np.nan_to_num(rows["ci"].to_numpy(dtype=float) * spec.scale)
            color = f"C{j % 10}"
            ax.plot(rows["step"], mean, marker=".", color=color, label=(names or {}).get(group, group))
            ax.fill_between(rows["step"], mean - band, mean + band, color=color, alpha=0.2, linewidth=0)
        for k, (steps, values) in enumerate(singles):
            label = "collapsed trial" if k == 0 else None
            ax.plot(steps, values * spec.scale, color="red", linewidth=0.8, linestyle=":", label=label)
        if hline is not None:
            ax.axhline(hline[0], color="red", linestyle="--", linewidth=1, label=hline[1])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(spec.label, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if i == len(panels) - 1:
            ax.legend(title=legend_title, fontsize=8, title_fontsize=8, loc="best")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def plot_parallel(board: pd.DataFrame, params: Sequence[str], metric: str, path: Path) -> Path:
    """Parallel coordinates: one line per configuration through its swept values, colored by the metric."""
    spec = metric_spec(metric)
    board = board[np.isfinite(board[f"{metric}_mean"].to_numpy(dtype=float))]
    columns: list[np.ndarray] = []
    ticks: list[tuple[list[float], list[str]]] = []
    for p in params:
        levels = sorted({format_value(v): v for v in board[p]}.items(), key=lambda kv: level_sort_key(kv[1]))
        index = {label: k for k, (label, _) in enumerate(levels)}
        names = display_labels(board[p])
        # Every axis is the rank of the value among its levels, so categorical and log-spaced values both
        # spread evenly from 0 to 1.
        span = max(len(levels) - 1, 1)
        columns.append(np.array([index[format_value(v)] / span for v in board[p]], dtype=float))
        shown = levels if len(levels) <= 10 else levels[:: max(len(levels) // 8, 1)]
        ticks.append(([index[label] / span for label, _ in shown], [names[label] for label, _ in shown]))
    values = board[f"{metric}_mean"].to_numpy(dtype=float) * spec.scale
    lo, hi = (values.min(), values.max()) if len(values) else (0.0, 1.0)
    columns.append((values - lo) / (hi - lo) if hi > lo else np.full(len(values), 0.5))
    ticks.append(([0.0, 1.0], [f"{lo:.{spec.decimals}f}", f"{hi:.{spec.decimals}f}"]))
    data = np.stack(columns, axis=1) if len(values) else np.zeros((0, len(columns)))

    fig = Figure(figsize=(1.8 * len(columns) + 1.5, 3.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    cmap = matplotlib.colormaps["viridis"]
    x = np.arange(len(columns))
    for row, value in sorted(zip(data, values, strict=True), key=lambda rv: rv[1]):  # best drawn on top
        ax.plot(x, row, color=cmap(norm(value)), alpha=0.8, linewidth=1.2)
    for k, (positions, labels) in enumerate(ticks):
        ax.axvline(k, color="black", linewidth=0.8)
        for pos, label in zip(positions, labels, strict=True):
            ax.text(
                k + 0.03,
                pos,
                label,
                fontsize=7,
                va="center",
                bbox={"facecolor": "white", "alpha": 0.7, "pad": 0.5, "linewidth": 0},
            )
    ax.set_xticks(x, [*params, spec.label], fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.1, len(columns) - 0.6)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"{spec.label} (mean over seeds)")
    ax.set_title("Configurations (mean over seeds)", fontsize=11)
    return _save(fig, path)


def plot_importance(importance: Importance, metric: str, path: Path) -> Path:
    """Horizontal bars of normalized parameter importances, with their 5-95% bootstrap range when known."""
    names = list(importance.values)[::-1]
    fig = Figure(figsize=(5.5, 0.5 * len(names) + 1.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    values = np.array([importance.values[n] for n in names])
    spread = None
    if importance.low and importance.high:
        low = np.array([importance.low[n] for n in names])
        high = np.array([importance.high[n] for n in names])
        spread = np.clip(np.stack([values - low, high - values]), 0.0, None)  # the mean may sit outside
    ax.barh(names, values, xerr=spread, capsize=3, color="C0", ecolor="black")
    ax.set_xlim(0, 1)
    ax.set_xlabel("importance (fraction, sums to 1)")
    spread_note = f", 5-95% of {importance.resamples} resamples" if spread is not None else ""
    ax.set_title(f"Parameter importance for {metric} ({importance.method}{spread_note})", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
