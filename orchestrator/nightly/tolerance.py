"""A metric's tolerance: how far it may move in its bad direction before the night is a regression.

``{rel: 0.15, direction: higher}`` (higher is better; a drop of more than 15% of the baseline fails) or
``{abs: 0.02, direction: higher}`` (a drop of more than 0.02, e.g. two accuracy points, fails). The suite file
declares them (orchestrator.nightly.schema); the verdict applies them (orchestrator.nightly.verdict).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DIRECTIONS = ("higher", "lower")
KINDS = ("rel", "abs")


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
        """Whether ``current`` is finite and no worse than :meth:`limit` of ``baseline``."""
        if not math.isfinite(current):
            return False
        limit = self.limit(baseline)
        return current >= limit if self.direction == "higher" else current <= limit

    def fraction_of(self, baseline: float) -> float:
        """The allowed move as a fraction of ``baseline`` (an ``abs`` one over the baseline's magnitude)."""
        if self.kind == "rel":
            return self.amount
        return self.amount / abs(baseline) if baseline else math.inf

    def allowed_move(self) -> str:
        """The allowed move in the bad direction as shown to users: ``-15%`` or ``+0.02``."""
        sign = "-" if self.direction == "higher" else "+"
        amount = f"{self.amount * 100:g}%" if self.kind == "rel" else f"{self.amount:g}"
        return f"{sign}{amount}"
