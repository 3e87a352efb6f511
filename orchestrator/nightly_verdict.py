"""The nightly verdict: tolerances, the rolling-median baseline, baseline files, and the verdict table.

Everything here is a pure function of numbers (no MLflow, no torch), so the rules that decide whether a night
is a regression are unit-tested on their own.

A tolerance says how far a metric may move in its bad direction before the night is a regression:
``{rel: 0.15, direction: higher}`` (higher is better; a drop of more than 15% of the baseline fails) or
``{abs: 0.02, direction: higher}`` (a drop of more than 0.02, e.g. two accuracy points, fails).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIRECTIONS = ("higher", "lower")
KINDS = ("rel", "abs")

# Verdicts of one metric. "missing" (measured by the baseline, not tonight) fails like a regression: a check
# that silently stops running is how regressions hide. "new" (no baseline yet) is what a first night says.
OK, REGRESSION, MISSING, NEW, INFO = "ok", "REGRESSION", "missing", "new", "info"
FAILING = (REGRESSION, MISSING)


class BaselineError(ValueError):
    """An unreadable or invalid baseline file; the message is one line naming the file and the member."""


@dataclass(frozen=True)
class Tolerance:
    """How far a metric may move in its bad direction before it counts as a regression."""

    kind: str  # "rel": a fraction of the baseline's magnitude; "abs": in the metric's own unit
    amount: float
    direction: str  # "higher": higher is better, a drop fails; "lower": lower is better, a rise fails

    def limit(self, baseline: float) -> float:
        """The worst value that still passes against ``baseline``."""
        margin = self.amount * abs(baseline) if self.kind == "rel" else self.amount
        return baseline - margin if self.direction == "higher" else baseline + margin

    def passes(self, baseline: float, current: float) -> bool:
        if not math.isfinite(current):
            return False
        limit = self.limit(baseline)
        return current >= limit if self.direction == "higher" else current <= limit

    def describe(self) -> str:
        """``-15%`` or ``+0.02``: the allowed move in the bad direction."""
        sign = "-" if self.direction == "higher" else "+"
        amount = f"{self.amount * 100:g}%" if self.kind == "rel" else f"{self.amount:g}"
        return f"{sign}{amount}"


@dataclass(frozen=True)
class Row:
    """One metric of the verdict table."""

    metric: str
    baseline: float | None
    current: float | None
    tolerance: Tolerance | None
    verdict: str

    @property
    def change(self) -> float | None:
        """Relative change from the baseline (None without both numbers or with a zero baseline)."""
        if self.baseline is None or self.current is None or self.baseline == 0:
            return None
        return (self.current - self.baseline) / abs(self.baseline)

    @property
    def limit(self) -> float | None:
        if self.tolerance is None or self.baseline is None:
            return None
        return self.tolerance.limit(self.baseline)


def judge(
    current: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    tolerances: Mapping[str, Tolerance],
) -> list[Row]:
    """The verdict of every metric: judged ones (with a tolerance) first, then the recorded-only ones.

    Args:
        current: Tonight's metrics.
        baseline: The baseline's metrics; None (or an empty mapping) when there is none yet.
        tolerances: Metric name -> tolerance. Metrics without one are recorded (``info``), never judged.

    Returns:
        One row per metric tonight or judged in the baseline, sorted by (judged first, name).
    """
    base = dict(baseline or {})
    names = set(current) | {m for m in base if m in tolerances}
    rows = []
    for name in names:
        cur, ref, tol = current.get(name), base.get(name), tolerances.get(name)
        if tol is None:
            verdict = INFO
        elif cur is None:
            verdict = MISSING
        elif ref is None:
            verdict = NEW
        else:
            verdict = OK if tol.passes(ref, cur) else REGRESSION
        rows.append(Row(name, ref, cur, tol, verdict))
    return sorted(rows, key=lambda r: (r.tolerance is None, r.metric))


def regressions(rows: Sequence[Row]) -> list[Row]:
    """The rows that make the night a regression."""
    return [r for r in rows if r.verdict in FAILING]


def rolling_median(nights: Sequence[Mapping[str, float]], window: int) -> dict[str, float]:
    """Per metric, the median over the newest ``window`` nights (``nights`` newest first).

    A median rather than a mean: one night on a busy machine must not drag the baseline down for a week.
    A metric absent from some of those nights takes the median of the nights that have it.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    recent = nights[:window]
    names = {name for night in recent for name in night}
    return {
        name: statistics.median(night[name] for night in recent if name in night) for name in sorted(names)
    }


# ---- baseline files --------------------------------------------------------------------------------
def read_baseline(path: str | Path) -> tuple[dict[str, float], dict[str, Any]]:
    """A baseline file's ``metrics`` (name -> number) and its other members (where and when it was made).

    Raises:
        BaselineError: unreadable file, not a JSON object, or a missing, empty or non-numeric ``metrics``.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise BaselineError(f"{p}: cannot read baseline file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BaselineError(f"{p}: invalid JSON (line {getattr(exc, 'lineno', '?')})") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{p}: a baseline file is a JSON object with a 'metrics' member")
    if "metrics" not in data:
        raise BaselineError(f"{p}: member 'metrics' is required (an object of metric name -> number)")
    metrics = data["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise BaselineError(f"{p}: member 'metrics' must be a non-empty object of metric name -> number")
    out: dict[str, float] = {}
    for name, value in metrics.items():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value):
            raise BaselineError(f"{p}: member 'metrics.{name}' must be a finite number, got {value!r}")
        out[name] = float(value)
    return out, {k: v for k, v in data.items() if k != "metrics"}


def write_baseline(path: str | Path, metrics: Mapping[str, float], meta: Mapping[str, Any]) -> Path:
    """Writes ``{"metrics": ..., **meta}``: the format :func:`read_baseline` reads."""
    p = Path(path)
    body = {"metrics": {k: float(v) for k, v in sorted(metrics.items()) if math.isfinite(v)}, **meta}
    p.write_text(json.dumps(body, indent=1) + "\n")
    return p


# ---- display ---------------------------------------------------------------------------------------
_UNITS = {
    "img_per_s": "img/s",
    "achieved_gflops": "GFLOP/s",
    "matmul_peak_gflops": "GFLOP/s",
    "flops_per_img": "FLOP/img",
    "fraction_of_peak": "fraction",
    "probe_acc": "fraction",
    "knn_acc": "fraction",
    "rankme": "eff. rank",
    "wall_ratio": "x",
    "context_patches_mean": "patches",
    "target_patches_mean": "patches",
}


def unit_of(metric: str) -> str:
    """The unit a metric is shown in (every number a user sees has one)."""
    leaf = metric.rsplit(".", 1)[-1]
    if leaf in _UNITS:
        return _UNITS[leaf]
    return "s" if leaf.endswith("_s") else ""


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def table_rows(rows: Sequence[Row]) -> list[dict[str, str]]:
    """The verdict table as strings, one dict per metric (columns in display order)."""
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
                "tolerance": "-" if r.tolerance is None else r.tolerance.describe(),
                "limit": fmt(r.limit),
                "verdict": r.verdict,
            }
        )
    return out


def markdown_table(rows: Sequence[Row]) -> str:
    """The verdict table in GitHub markdown (also readable as plain text in a terminal)."""
    cells = table_rows(rows)
    header = list(cells[0]) if cells else ["metric", "baseline", "current", "tolerance", "verdict"]
    lines = [header, *([c[h] for h in header] for c in cells)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def render(line: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(lines[0]), rule, *(render(line) for line in lines[1:])])
