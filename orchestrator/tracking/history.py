"""A trial's per-epoch curves as one run tag, so a report reads 1,000 trials' histories in one search.

MLflow's public API reads metric histories one run and one key at a time (``get_metric_history``): about
3,000 round trips for a 1,000-trial sweep. The trial therefore also keeps the curves the report draws in the
tag :data:`HISTORY_TAG`, rewritten with each epoch's metrics in the same ``log_batch`` call, which
``search_runs`` returns with every run. Runs logged before this tag existed, and curves too long for one tag
value, are read back metric by metric instead (the report falls back per run).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

HISTORY_TAG = "jepa.history"
HISTORY_KEYS = ("probe_acc", "train_loss", "rankme")  # the curves the report draws
MAX_TAG_CHARS = 8000  # MLflow's limit on a tag value (mlflow.utils.validation.MAX_TAG_VAL_LENGTH)

Curves = dict[str, list[tuple[int, float]]]


def add_epoch(
    curves: Curves, step: int, metrics: Mapping[str, float], keys: Iterable[str] = HISTORY_KEYS
) -> None:
    """Appends ``metrics[key]`` at ``step`` to each curve of ``keys`` the epoch logged (in place)."""
    for key in keys:
        if key in metrics:
            points = curves.setdefault(key, [])
            if points and points[-1][0] == step:  # a resumed trial reports its last epoch again
                points.pop()
            points.append((int(step), float(metrics[key])))


def encode(curves: Curves) -> str | None:
    """The tag value: ``{"key": [[step, value], ...]}`` with NaN as null; None when it would not fit.

    A run whose curves outgrew the tag gets the value ``""`` (its older, shorter value would be wrong), which
    :func:`decode` reads as "no curves here".
    """
    # 7 significant digits (float32's precision, what a plot needs) keep ~200 epochs of 3 curves in a tag.
    body = {
        k: [[s, None if math.isnan(v) else float(f"{v:.7g}")] for s, v in pts] for k, pts in curves.items()
    }
    text = json.dumps(body, separators=(",", ":"))
    return text if len(text) <= MAX_TAG_CHARS else None


def decode(text: str | None) -> Curves | None:
    """The curves a tag value holds, or None for a missing or unreadable value (the caller reads metrics)."""
    if not text:
        return None
    try:
        body = json.loads(text)
        return {k: [(int(s), math.nan if v is None else float(v)) for s, v in pts] for k, pts in body.items()}
    except (ValueError, TypeError):
        return None
