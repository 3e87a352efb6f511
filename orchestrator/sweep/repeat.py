"""Each Optuna suggestion trained once per seed, and told to Optuna as one result.

Ray Tune's :class:`ray.tune.search.Repeater` hands its searcher the ``nanmean`` of the repeats' scores, so a
suggestion whose seed diverged is told the mean of the seeds that survived: a setting that is unstable one
time in three looks as good as its lucky runs. :class:`SeedRepeater` tells the searcher that such a
suggestion failed instead (Optuna records the trial as ``FAIL`` and does not learn from its value), which is
also how the report counts it: a failed seed counts against its configuration. It is its own searcher
wrapper, on Tune's public :class:`~ray.tune.search.Searcher` interface, rather than a subclass reaching into
``Repeater``'s private bookkeeping.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from ray.tune.search import Searcher

from orchestrator.sweep.plan import TRIAL_INDEX

FAILED_KEY = "failed"  # in a trial's last result when the trainer diverged (orchestrator.sweep.trainable)


def _score(result: dict[str, Any] | None, metric: str) -> float:
    """A repeat's score, or NaN when it has none (no result, no metric, a divergence, not finite)."""
    if not result or result.get(FAILED_KEY) or metric not in result:
        return math.nan
    value = float(result[metric])
    return value if math.isfinite(value) else math.nan


class SeedRepeater(Searcher):
    """Wraps a searcher: each of its suggestions becomes ``repeat`` trials (one per seed, ``TRIAL_INDEX`` in
    the config says which), and the searcher is told one result per suggestion once every repeat has ended.

    It is told the mean over seeds only when every seed finished with a finite metric; otherwise
    ``on_trial_complete(..., error=True)`` with no result, which :class:`OptunaSearch` turns into a failed
    Optuna trial. Written on Tune's public :class:`~ray.tune.search.Searcher` interface, as a wrapper:
    Tune saves a wrapper's :meth:`get_state` beside the wrapped searcher's own checkpoint, so the groups
    survive a resumed sweep.
    """

    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True) -> None:
        self.searcher = searcher  # the name Tune looks for when it saves and restores wrapped searchers
        self.repeat = repeat
        self.set_index = set_index
        # By suggestion (its first trial's id, the one the searcher knows): the config and each repeat's
        # score (None until it ends).
        self._groups: dict[str, dict[str, Any]] = {}
        # Trial id -> its suggestion. The suggestion still handing out repeats is always the newest group.
        self._group_of: dict[str, str] = {}
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        accepted = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return accepted

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        primary = next(reversed(self._groups), None)
        group = self._groups[primary] if primary is not None else None
        if group is None or len(group["scores"]) >= self.repeat:
            config = self.searcher.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            primary, group = trial_id, {"config": copy.deepcopy(config), "scores": {}}
            self._groups[primary] = group
        index = len(group["scores"])
        group["scores"][trial_id] = None
        self._group_of[trial_id] = primary
        config = copy.deepcopy(group["config"])
        if self.set_index:
            config[TRIAL_INDEX] = index
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        primary = self._group_of.get(trial_id)
        if primary is None:  # not one this wrapper suggested
            return
        scores = self._groups[primary]["scores"]
        scores[trial_id] = math.nan if error else _score(result, self.searcher.metric)
        if len(scores) < self.repeat or any(v is None for v in scores.values()):
            return
        values = list(scores.values())
        if any(math.isnan(v) for v in values):
            self.searcher.on_trial_complete(primary, result=None, error=True)
        else:
            self.searcher.on_trial_complete(primary, result={self.searcher.metric: sum(values) / len(values)})

    def get_state(self) -> dict[str, Any]:
        return {"groups": self._groups, "group_of": self._group_of}

    def set_state(self, state: dict[str, Any]) -> None:
        # A state saved before this version also holds "open", the newest group's key: nothing to restore.
        if "groups" not in state:
            state = _from_repeater_state(state)
        self._groups, self._group_of = dict(state["groups"]), dict(state["group_of"])

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


def _from_repeater_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state of a sweep saved by this class's earlier version, a subclass of Tune's ``Repeater`` (a copy
    of its ``__dict__``: trial id -> group, each group with its first trial's id, config and scores in the
    order its trials were suggested), in this version's form, so that such a sweep still resumes. Groups keep
    the order of their first trials, so the group that was still handing out repeats stays the newest."""
    members: dict[str, tuple[Any, list[str]]] = {}  # first trial's id -> (group, its trials in order)
    for trial_id, group in state.get("_trial_id_to_group", {}).items():
        members.setdefault(group.primary_trial_id, (group, []))[1].append(trial_id)
    out: dict[str, Any] = {"groups": {}, "group_of": {}}
    for primary, (group, ids) in members.items():
        out["groups"][primary] = {
            "config": group.config,
            "scores": {t: None if v is None else float(v) for t, v in zip(ids, group.scores(), strict=False)},
        }
        out["group_of"].update(dict.fromkeys(ids, primary))
    return out
