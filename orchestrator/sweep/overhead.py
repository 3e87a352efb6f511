"""The sweep's time outside its trials: the ``overhead:`` closing line, written and read in one place.

Start-up runs from the command's start to the end of the first training step of any trial; wind-down from
the last result any trial reported (its last epoch) to the closing lines. The nightly benchmark reads the line
back (:func:`parse_overhead_line`). Standard library only, apart from psutil for the process's start time.
"""

from __future__ import annotations

import re
from typing import Any

FIRST_STEP_KEY = "first_step_at"  # in every Tune result: when this trial's process ended its first step
REPORTED_KEY = "reported_at"  # and when the result was reported (both time.time())

_LINE = re.compile(
    r"^overhead: start-up (?P<startup>[\d.]+) s \(command to the first trial's first step\), "
    r"wind-down (?P<winddown>[\d.]+) s \(the last trial's last epoch to this line\)$",
    re.MULTILINE,
)


def process_started_at() -> float:
    """When this process started (``time.time()`` scale): the command's start, interpreter start-up too."""
    import psutil

    return psutil.Process().create_time()


def overhead_line(results: Any, started_at: float, now: float) -> str | None:
    """``overhead: start-up X s (...), wind-down Y s (...)`` from Tune results carrying
    :data:`FIRST_STEP_KEY` and :data:`REPORTED_KEY`, or None when no trial stepped (all resumed as finished,
    or failed before training)."""
    firsts = [r.metrics[FIRST_STEP_KEY] for r in results if r.metrics and FIRST_STEP_KEY in r.metrics]
    lasts = [r.metrics[REPORTED_KEY] for r in results if r.metrics and REPORTED_KEY in r.metrics]
    if not firsts or not lasts:
        return None
    return (
        f"overhead: start-up {min(firsts) - started_at:.1f} s (command to the first trial's first step), "
        f"wind-down {now - max(lasts):.1f} s (the last trial's last epoch to this line)"
    )


def parse_overhead_line(text: str) -> tuple[float, float] | None:
    """(start-up s, wind-down s) from the first ``overhead:`` line in a sweep's output, or None."""
    found = _LINE.search(text)
    return None if found is None else (float(found["startup"]), float(found["winddown"]))
