"""Each Optuna suggestion trained once per seed, and told to Optuna as one result.

Ray Tune's :class:`ray.tune.search.Repeater` hands its searcher the ``nanmean`` of the repeats' scores, so a
suggestion whose seed diverged is told the mean of the seeds that survived: a setting that is unstable one
time in three looks as good as its lucky runs. :class:`SeedRepeater` tells the searcher that such a
suggestion failed instead (Optuna records the trial as ``FAIL`` and does not learn from its value), which is
also how the report counts it: a failed seed counts against its configuration.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ray.tune.search import Repeater

FAILED_KEY = "failed"  # in a trial's last result when the trainer diverged (orchestrator.sweep.trainable)


def _score(result: dict[str, Any] | None, metric: str) -> float:
    """A repeat's score, or NaN when it has none (no result, no metric, a divergence, not finite)."""
    if not result or result.get(FAILED_KEY) or metric not in result:
        return math.nan
    value = float(result[metric])
    return value if math.isfinite(value) else math.nan


class SeedRepeater(Repeater):
    """A :class:`~ray.tune.search.Repeater` that reports a suggestion as failed if any of its seeds failed.

    The searcher sees the mean over seeds only when every seed finished with a finite metric; otherwise it
    gets ``on_trial_complete(..., error=True)`` with no result, which :class:`OptunaSearch` turns into a
    failed Optuna trial. The state that decides this (which groups have a failed repeat) lives in the
    instance's ``__dict__``, which ``Repeater.get_state`` saves, so it survives a resumed sweep.
    """

    def __init__(self, searcher: Any, repeat: int = 1, set_index: bool = True) -> None:
        super().__init__(searcher, repeat=repeat, set_index=set_index)
        self._failed_groups: set[str] = set()

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, **kwargs: Any) -> None:
        group = self._trial_id_to_group.get(trial_id)
        if group is None:  # not one of ours (Repeater logs the same case and fails on the lookup)
            return
        score = math.nan if kwargs.get("error") else _score(result, self.searcher.metric)
        if math.isnan(score):
            self._failed_groups.add(group.primary_trial_id)
        group.report(trial_id, score)
        if not group.finished_reporting():
            return
        if group.primary_trial_id in self._failed_groups:
            self.searcher.on_trial_complete(group.primary_trial_id, result=None, error=True)
        else:
            mean = float(np.mean(group.scores()))
            self.searcher.on_trial_complete(group.primary_trial_id, result={self.searcher.metric: mean})
