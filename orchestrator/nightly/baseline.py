"""What tonight is compared with: the rolling median of earlier nights, or a baseline file.

A baseline file is ``{"metrics": {name: number, ...}, ...}``; its other members say where and when it was
made (device kind, smoke flag, suite fingerprint, git SHA, MLflow run). ``--write-baseline FILE`` writes one,
``--baseline FILE`` reads one. Which earlier nights count is orchestrator.nightly.store's query.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class BaselineError(ValueError):
    """An unreadable or invalid baseline file; the message is one line naming the file and the member."""


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
    """Writes ``{"metrics": ..., **meta}`` (finite ones, sorted): the format :func:`read_baseline` reads."""
    p = Path(path)
    body = {"metrics": {k: float(v) for k, v in sorted(metrics.items()) if math.isfinite(v)}, **meta}
    p.write_text(json.dumps(body, indent=1) + "\n")
    return p
