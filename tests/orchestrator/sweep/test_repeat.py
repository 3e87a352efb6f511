"""SeedRepeater: a suggestion with a failed seed is told to the searcher as failed, not as a survivor mean."""

from __future__ import annotations

import math
from typing import Any

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from orchestrator.sweep.repeat import FAILED_KEY, SeedRepeater


class _Recorder(Searcher):
    """A searcher that suggests one fixed config and records what it is told."""

    def __init__(self) -> None:
        super().__init__(metric="probe_acc", mode="max")
        self.told: list[tuple[str, dict[str, Any] | None, bool]] = []

    def suggest(self, trial_id: str) -> dict[str, Any]:
        return {"mask.ratio": 0.4}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.told.append((trial_id, result, error))


def _group(repeater: SeedRepeater, prefix: str, n: int) -> list[str]:
    ids = [f"{prefix}{i}" for i in range(n)]
    for trial_id in ids:
        assert repeater.suggest(trial_id) is not None
    return ids


def test_seed_repeater__all_seeds_finished_reports_their_mean() -> None:
    inner = _Recorder()
    repeater = SeedRepeater(inner, repeat=3)
    ids = _group(repeater, "a", 3)
    for trial_id, score in zip(ids, (0.7, 0.8, 0.9), strict=True):
        repeater.on_trial_complete(trial_id, {"probe_acc": score})
    ((primary, result, error),) = inner.told
    assert primary == "a0" and not error
    assert math.isclose(result["probe_acc"], 0.8)


def test_seed_repeater__a_diverged_seed_fails_the_suggestion() -> None:
    inner = _Recorder()
    repeater = SeedRepeater(inner, repeat=3)
    ids = _group(repeater, "b", 3)
    repeater.on_trial_complete(ids[0], {"probe_acc": 0.9})
    repeater.on_trial_complete(ids[1], {FAILED_KEY: 1.0, "diverged_epoch": 2.0})
    assert inner.told == []  # nothing is told before every seed has reported
    repeater.on_trial_complete(ids[2], {"probe_acc": 0.95})
    assert inner.told == [("b0", None, True)]


def test_seed_repeater__an_errored_seed_fails_the_suggestion() -> None:
    inner = _Recorder()
    repeater = SeedRepeater(inner, repeat=2)
    ids = _group(repeater, "c", 2)
    repeater.on_trial_complete(ids[0], error=True)
    repeater.on_trial_complete(ids[1], {"probe_acc": 0.9})
    assert inner.told == [("c0", None, True)]


def test_seed_repeater__optuna_records_a_failed_trial() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    search = OptunaSearch(
        space={"mask.ratio": optuna.distributions.FloatDistribution(0.2, 0.6)},
        metric="probe_acc",
        mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0),
        study_name="repeat",
        storage=storage,
    )
    repeater = SeedRepeater(search, repeat=2)
    good, bad = _group(repeater, "g", 2), _group(repeater, "h", 2)
    for trial_id in good:
        repeater.on_trial_complete(trial_id, {"probe_acc": 0.8})
    repeater.on_trial_complete(bad[0], {"probe_acc": 0.99})
    repeater.on_trial_complete(bad[1], {FAILED_KEY: 1.0})
    study = optuna.load_study(study_name="repeat", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
    assert study.best_value == 0.8
