"""The nightly verdict: tolerances, the rolling-median baseline, baseline files, and the verdict table.

Everything here is a pure function of numbers (no MLflow, no torch), so the rules that decide whether a night
is a regression are unit-tested on their own.

A tolerance says how far a metric may move in its bad direction before the night is a regression:
``{rel: 0.15, direction: higher}`` (higher is better; a drop of more than 15% of the baseline fails) or
``{abs: 0.02, direction: higher}`` (a drop of more than 0.02, e.g. two accuracy points, fails).

Timing metrics (seconds, img/s, GFLOP/s of the step) are judged against the matmul peak that the same night
measured around the same section (``<section>.matmul_peak_gflops``), so that a machine made uniformly slower
is not reported as a regression while a slower step at the same peak still is. Tonight's value is scaled to
the baseline's peak (seconds x peak tonight / peak baseline; throughput x peak baseline / peak tonight) and
that value is held to the tolerance (``rel`` below is the tolerance as a fraction of the baseline). The
correction assumes the metric moves in proportion to the peak, so it is trusted only while the machine
stayed near the baseline's:

- the peak moved by at most twice the tolerance (a factor of ``1 + 2 * rel`` either way): within that, a
  metric whose response to the machine is within 50% of proportional is corrected to within one tolerance
  (``sqrt(1 + 2 rel) <= 1 + rel``), and the night that motivated this (peak 103 -> 49 GFLOP/s, wall time
  10.1 -> 20.1 s under a +75% tolerance) is inside it;
- tonight's peak samples around the section agree within the tolerance (``matmul_peak_spread``, max / min,
  at most ``1 + rel``): a yardstick that wobbles by more cannot resolve a move of the tolerance's size;
- other processes left at least ``1 / (1 + rel)`` of the CPU time free that the baseline had free
  (``other_cpu_share``): a step whose threads use every core slows far more than the peak shows when other
  work takes cores (measured here: a busy loop beside the 2-thread smoke suite on 2 cores took the peak to
  0.60x and the step to 8.5x slower), so no correction is trusted once other work took more than that.

Beyond any bound the metric is ``inconclusive`` (with the reason), which does not fail the night; unless the
raw and the normalised values both pass, in which case it is ``ok`` whatever the machine did. Past the spread
or the shift bound, a move too large for the yardstick's wobble to explain still fails: the better of the raw
and the normalised value is given the whole uncertainty in its favour (a factor of spread x shift, which also
allows a metric that follows the machine up to twice as steeply as proportional), and a value that fails
even so is a ``REGRESSION`` (a step made 100x slower is not hidden by a peak that wobbled 2x). Other
processes taking the CPU have no such bound (the 8.5x above), so that case stays inconclusive. A night or
baseline file without the section's peak (stored before peaks were recorded) is compared raw, and says so.
Quality metrics (accuracies, RankMe, loss) are never normalised.
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
# "inconclusive" (a timing metric on a machine that moved too far to tell) is shown, never failing by itself.
OK, REGRESSION, MISSING, NEW, INFO = "ok", "REGRESSION", "missing", "new", "info"
INCONCLUSIVE = "inconclusive"
FAILING = (REGRESSION, MISSING)

# The yardstick of timing metrics: per section, the matmul peak measured in the same night, and how far
# tonight's samples of it spread (max / min). bench_<device>.matmul_peak_gflops predates the others.
PEAK, SPREAD, OTHERS = "matmul_peak_gflops", "matmul_peak_spread", "other_cpu_share"
SHIFT_BOUND = 2.0  # the peak may move by this many tolerances before a timing metric is inconclusive
SPREAD_BOUND = 1.0  # tonight's peak samples may spread by this many tolerances
LOAD_BOUND = 1.0  # the CPU time other work left free may shrink by this many tolerances


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
    normalised: float | None = None  # a timing metric: tonight's value at the baseline's peak
    peaks: tuple[float, float] | None = None  # (baseline, tonight) GFLOP/s behind ``normalised``
    comparison: str = ""  # how a timing metric was compared (normalised, raw, inconclusive), and why

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


def scaling(metric: str) -> int:
    """How a metric follows the machine's speed: +1 throughput (img/s, GFLOP/s), -1 durations (s), 0 neither.

    The peak itself, fractions of it and ratios of two timings (``overhead.wall_ratio``) are already free of
    the machine's speed, and quality metrics never depended on it.
    """
    if metric.rsplit(".", 1)[-1] == PEAK:
        return 0
    unit = unit_of(metric)
    return 1 if unit in ("img/s", "GFLOP/s") else -1 if unit == "s" else 0


def peak_of(metric: str) -> str:
    """The peak that normalises ``metric``: its own section's (``quality.x`` -> ``quality.<PEAK>``)."""
    return f"{metric.split('.', 1)[0]}.{PEAK}"


def normalise(value: float, scale: int, peak_now: float, peak_base: float) -> float:
    """``value`` measured at ``peak_now`` as it would read at ``peak_base`` (proportional scaling)."""
    return value * (peak_base / peak_now) ** scale


def _rel(tol: Tolerance, baseline: float) -> float:
    """The tolerance as a fraction of the baseline (an ``abs`` one divided by the baseline's magnitude)."""
    if tol.kind == "rel":
        return tol.amount
    return tol.amount / abs(baseline) if baseline else math.inf


def _gflops(value: float) -> str:
    return f"{value:.4g} GFLOP/s"


def _judge_timing(
    name: str, cur: float, ref: float, tol: Tolerance, current: Mapping[str, float], base: Mapping[str, float]
) -> Row:
    """A judged timing metric, normalised by its section's peak where both nights have one (module doc)."""
    peak_base, peak_now = base.get(peak_of(name)), current.get(peak_of(name))
    section = name.split(".", 1)[0]
    if not math.isfinite(cur):
        return Row(name, ref, cur, tol, REGRESSION, comparison="not a finite number tonight")
    raw_ok = tol.passes(ref, cur)
    if not (peak_base and peak_base > 0 and peak_now and peak_now > 0):
        side = "tonight" if peak_base else "the baseline"
        why = f"compared raw: {side} has no same-run matmul peak for {section}"
        if not peak_base:
            why += " (recorded before the nightly measured peaks)"
        return Row(name, ref, cur, tol, OK if raw_ok else REGRESSION, comparison=why)
    adjusted = normalise(cur, scaling(name), peak_now, peak_base)
    norm_ok = tol.passes(ref, adjusted)
    peaks = f"{_gflops(peak_now)} tonight vs {_gflops(peak_base)} baseline"
    how = f"normalised by the same-run matmul peak, {peaks}"
    rel = _rel(tol, ref)
    shift = max(peak_now / peak_base, peak_base / peak_now)
    spread = current.get(f"{section}.{SPREAD}", 1.0)
    others_now, others_base = current.get(f"{section}.{OTHERS}", 0.0), base.get(f"{section}.{OTHERS}", 0.0)
    free = (1 - others_now) / max(1 - others_base, 1e-9)  # CPU time left free tonight vs the baseline
    verdict = OK if norm_ok else REGRESSION
    # Raw and normalised both pass: so does a metric following the machine anywhere from not at all to in
    # proportion, so no bound is needed. Otherwise the correction decides, where it can be trusted.
    if not (raw_ok and norm_ok):
        if free < 1 / (1 + LOAD_BOUND * rel):
            verdict = INCONCLUSIVE
            then = f"{others_base:.0%}" if f"{section}.{OTHERS}" in base else "not recorded"
            how = (
                f"inconclusive: other processes kept {others_now:.0%} of the CPUs busy during {section} "
                f"(baseline {then}), more than the {tol.describe()} tolerance allows: the machine was "
                f"shared ({peaks})"
            )
        elif spread > 1 + SPREAD_BOUND * rel:
            verdict = INCONCLUSIVE
            how = (
                f"inconclusive: tonight's matmul peak samples around {section} spread {spread:.2f}x, "
                f"more than the {tol.describe()} tolerance allows ({1 + SPREAD_BOUND * rel:.2f}x): the "
                f"machine was not steady ({peaks})"
            )
        elif shift > 1 + SHIFT_BOUND * rel:
            verdict = INCONCLUSIVE
            how = (
                f"inconclusive: the machine's matmul peak moved {peak_now / peak_base:.2f}x "
                f"({peaks}), more than twice the {tol.describe()} tolerance allows "
                f"({1 + SHIFT_BOUND * rel:.2f}x either way)"
            )
        if verdict == INCONCLUSIVE and free >= 1 / (1 + LOAD_BOUND * rel):
            slack = spread * shift  # the yardstick's whole uncertainty, given to the metric
            scale = scaling(name)
            best = max(cur, adjusted) if scale > 0 else min(cur, adjusted)
            generous = best * slack**scale
            if not tol.passes(ref, generous):
                verdict = REGRESSION
                how = (
                    f"fails beyond what the machine explains: {generous:.4g} even with the peak's spread "
                    f"{spread:.2f}x and shift {shift:.2f}x in its favour ({peaks})"
                )
    return Row(name, ref, cur, tol, verdict, adjusted, (peak_base, peak_now), how)


def judge(
    current: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    tolerances: Mapping[str, Tolerance],
) -> list[Row]:
    """The verdict of every metric: judged ones (with a tolerance) first, then the recorded-only ones.

    Timing metrics (:func:`scaling` not 0) are normalised by their section's same-run peak and may come out
    ``inconclusive``; see the module docstring for the rule and its bounds.

    Args:
        current: Tonight's metrics (with the peaks, ``<section>.matmul_peak_gflops`` and ``..._spread``).
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
        if tol is not None and cur is not None and ref is not None and scaling(name):
            rows.append(_judge_timing(name, cur, ref, tol, current, base))
            continue
        if tol is None:
            verdict = INFO
        elif cur is None:
            verdict = MISSING
        elif ref is None:
            verdict = NEW
        else:
            verdict = OK if tol.passes(ref, cur) else REGRESSION
        row = Row(name, ref, cur, tol, verdict)
        peak_base, peak_now = base.get(peak_of(name)), current.get(peak_of(name))
        if scaling(name) and cur is not None and ref is not None and peak_base and peak_now:
            # Recorded, not judged: the normalised value is shown all the same.
            adjusted = normalise(cur, scaling(name), peak_now, peak_base)
            row = Row(name, ref, cur, tol, verdict, adjusted, (peak_base, peak_now))
        rows.append(row)
    return sorted(rows, key=lambda r: (r.tolerance is None, r.metric))


def regressions(rows: Sequence[Row]) -> list[Row]:
    """The rows that make the night a regression."""
    return [r for r in rows if r.verdict in FAILING]


def inconclusive(rows: Sequence[Row]) -> list[Row]:
    """The timing rows that could not be judged because the machine moved (they do not fail the night)."""
    return [r for r in rows if r.verdict == INCONCLUSIVE]


def verdict_line(row: Row) -> str:
    """``REGRESSION: <metric>: baseline .., current .. (.. at the baseline's peak), tolerance .. (limit ..)``.

    Meant for regression and inconclusive rows (``MISSING`` reads as a regression); a timing row also says
    how it was compared.
    """
    unit = f" {unit_of(row.metric)}" if unit_of(row.metric) else ""
    head = "REGRESSION" if row.verdict in FAILING else row.verdict.upper()
    if row.current is None:
        return f"{head}: {row.metric}: baseline {fmt(row.baseline)}{unit}, not measured tonight"
    tol = row.tolerance.describe() if row.tolerance else "-"
    at_peak = f" ({fmt(row.normalised)}{unit} at the baseline's peak)" if row.normalised is not None else ""
    line = (
        f"{head}: {row.metric}: baseline {fmt(row.baseline)}{unit}, current {fmt(row.current)}{unit}"
        f"{at_peak}, tolerance {tol} (limit {fmt(row.limit)}{unit})"
    )
    return f"{line}; {row.comparison}" if row.comparison else line


def peak_lines(rows: Sequence[Row], current: Mapping[str, float]) -> list[str]:
    """One line per section with judged timing metrics: which comparison they got, and the peaks behind it."""
    out = []
    for section in sorted({r.metric.split(".", 1)[0] for r in rows if r.tolerance and scaling(r.metric)}):
        judged = [r for r in rows if r.tolerance and scaling(r.metric) and r.metric.startswith(f"{section}.")]
        with_peaks = [r for r in judged if r.peaks is not None]
        if with_peaks:
            base, now = with_peaks[0].peaks
            spread, others = current.get(f"{section}.{SPREAD}"), current.get(f"{section}.{OTHERS}")
            steady = f", tonight's samples within {spread:.2f}x" if spread else ""
            steady += f", other processes {others:.0%} of the CPUs" if others is not None else ""
            out.append(
                f"timing metrics of {section}: compared normalised by the same-run matmul peak, "
                f"{_gflops(now)} tonight vs {_gflops(base)} baseline ({now / base:.2f}x{steady})"
            )
        elif any(r.comparison for r in judged):
            out.append(f"timing metrics of {section}: {next(r.comparison for r in judged if r.comparison)}")
    return out


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
    "step_s_median": "s",
    "matmul_peak_spread": "x",
    "other_cpu_share": "fraction",
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
    "host_syncs_per_step": "syncs/step",
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
                "normalised": fmt(r.normalised),
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
