"""How a report shows values: metric names, units and scales, parameter values, ``mean ± CI`` cells.

Pure text formatting shared by the frames, the comparisons, the plots and the composer, so a value reads the
same in every table, sentence and axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class MetricSpec:
    """How one per-trial number is shown: name, unit, display scale and decimals."""

    key: str
    name: str
    unit: str = ""
    scale: float = 1.0
    decimals: int = 3

    @property
    def label(self) -> str:
        """Column header with the unit, e.g. ``probe acc (%)``."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


# The per-parameter tables show these (when present); accuracies are stored as fractions, shown in percent.
METRIC_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("probe_acc", "probe acc", "%", 100.0, 2),
    MetricSpec("test_probe_acc", "test probe acc", "%", 100.0, 2),
    MetricSpec("knn_acc", "kNN acc", "%", 100.0, 2),
    MetricSpec("test_knn_acc", "test kNN acc", "%", 100.0, 2),
    MetricSpec("rankme", "RankMe", "", 1.0, 1),
    MetricSpec("train_loss", "final loss", "", 1.0, 4),
    MetricSpec("img_per_s", "throughput, last epoch", "img/s", 1.0, 0),
    MetricSpec("duration_s", "wall time", "s", 1.0, 1),
)


def metric_spec(key: str) -> MetricSpec:
    """The display spec of a metric (unknown metrics shown raw)."""
    return next((s for s in METRIC_SPECS if s.key == key), MetricSpec(key, key, "", 1.0, 4))


def format_value(value: Any) -> str:
    """A param value as a user wrote it: ``0.996``, ``3``, ``None``, ``l2``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        short = f"{float(value):g}"
        return short if float(short) == float(value) else repr(float(value))
    return str(value)


def display_labels(values: Any) -> dict[str, str]:
    """Exact label (:func:`format_value`) -> the shortest text that still tells the distinct values apart,
    so that sampled floats such as 0.4195254015709299 read as 0.4195 (4 significant digits at least)."""
    exact = {format_value(v): v for v in values}
    floats = {
        k: float(v) for k, v in exact.items() if isinstance(v, (float, np.floating)) and math.isfinite(v)
    }
    shown: dict[str, str] = {}
    for digits in range(4, 18):
        shown = {k: f"{v:.{digits}g}" for k, v in floats.items()}
        if len(set(shown.values())) == len(shown):
            break
    return {k: shown.get(k, k) for k in exact}


def level_sort_key(value: Any) -> tuple[int, Any]:
    """Sorts None first, then numbers and intervals by value, then strings."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (0, 0)
    if isinstance(value, pd.Interval):
        return (1, value.left)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (1, float(value))
    return (2, str(value))


def format_mean_ci(mean: float, half: float, spec: MetricSpec, unit: bool = False) -> str:
    """``82.00 ± 2.48`` in the metric's display scale (``82.00 ± 2.48 %`` with ``unit``); the bare mean
    when there is no interval (one seed)."""
    if mean is None or not np.isfinite(mean):
        return "–"
    text = f"{mean * spec.scale:,.{spec.decimals}f}"
    if half is not None and np.isfinite(half):
        text += f" ± {half * spec.scale:,.{spec.decimals}f}"
    return f"{text} {spec.unit}" if unit and spec.unit else text


def format_p(p: float) -> str:
    """An adjusted p-value as printed; the studentized range's tail under 1e-9 counts as 0, so says so."""
    return f"{p:.3g}" if p >= 1e-9 else "< 1e-9"


def format_seconds(value: float) -> str:
    """``42.0 s``, or ``600 s (10.0 min)`` from two minutes on; ``–`` when unknown."""
    if not np.isfinite(value):
        return "–"
    return f"{value:,.1f} s" if value < 120 else f"{value:,.0f} s ({value / 60:,.1f} min)"
