"""The nightly verdict: each metric of tonight judged against its baseline and tolerance.

Everything here is a pure function of numbers (no MLflow, no torch), so the rules that decide whether a night
is a regression are unit-tested on their own. Tolerances are orchestrator.nightly.tolerance's; where the
baseline comes from, orchestrator.nightly.baseline's; how the verdict is shown, orchestrator.nightly.render's.

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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.nightly.metrics import OTHERS, SPREAD, normalise, peak_of, scaling, section_of
from orchestrator.nightly.tolerance import Tolerance

# Verdicts of one metric. "missing" (measured by the baseline, not tonight) fails like a regression: a check
# that silently stops running is how regressions hide. "new" (no baseline yet) is what a first night says.
# "inconclusive" (a timing metric on a machine that moved too far to tell) is shown, never failing by itself.
OK, REGRESSION, MISSING, NEW, INFO = "ok", "REGRESSION", "missing", "new", "info"
INCONCLUSIVE = "inconclusive"
FAILING = (REGRESSION, MISSING)

SHIFT_BOUND = 2.0  # the peak may move by this many tolerances before a timing metric is inconclusive
SPREAD_BOUND = 1.0  # tonight's peak samples may spread by this many tolerances
LOAD_BOUND = 1.0  # the CPU time other work left free may shrink by this many tolerances


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
        """The worst value that passes (None without a tolerance or a baseline)."""
        if self.tolerance is None or self.baseline is None:
            return None
        return self.tolerance.limit(self.baseline)


def gflops(value: float) -> str:
    """A matmul peak as shown in comparisons: ``103 GFLOP/s``."""
    return f"{value:.4g} GFLOP/s"


def _judge_timing(
    name: str, cur: float, ref: float, tol: Tolerance, current: Mapping[str, float], base: Mapping[str, float]
) -> Row:
    """A judged timing metric, normalised by its section's peak where both nights have one (module doc)."""
    peak_base, peak_now = base.get(peak_of(name)), current.get(peak_of(name))
    section = section_of(name)
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
    peaks = f"{gflops(peak_now)} tonight vs {gflops(peak_base)} baseline"
    how = f"normalised by the same-run matmul peak, {peaks}"
    rel = tol.fraction_of(ref)
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
                f"(baseline {then}), more than the {tol.allowed_move()} tolerance allows: the machine was "
                f"shared ({peaks})"
            )
        elif spread > 1 + SPREAD_BOUND * rel:
            verdict = INCONCLUSIVE
            how = (
                f"inconclusive: tonight's matmul peak samples around {section} spread {spread:.2f}x, "
                f"more than the {tol.allowed_move()} tolerance allows ({1 + SPREAD_BOUND * rel:.2f}x): the "
                f"machine was not steady ({peaks})"
            )
        elif shift > 1 + SHIFT_BOUND * rel:
            verdict = INCONCLUSIVE
            how = (
                f"inconclusive: the machine's matmul peak moved {peak_now / peak_base:.2f}x "
                f"({peaks}), more than twice the {tol.allowed_move()} tolerance allows "
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
