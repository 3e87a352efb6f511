"""SeedRepeater: a suggestion with a failed seed is told to the searcher as failed, not as a survivor mean."""

from __future__ import annotations

import copy
import math
from typing import Any

import optuna
import pytest
from ray.tune.search import Repeater, Searcher
from ray.tune.search.optuna import OptunaSearch

from orchestrator.sweep.plan import TRIAL_INDEX
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


class _Counter(_Recorder):
    """A recorder that also counts its suggestions and varies them."""

    def __init__(self) -> None:
        super().__init__()
        self.suggested = 0

    def suggest(self, trial_id: str) -> dict[str, Any]:
        self.suggested += 1
        return {"mask.ratio": 0.1 * self.suggested}


def test_seed_repeater__each_suggestion_runs_once_per_seed_index() -> None:
    inner = _Counter()
    repeater = SeedRepeater(inner, repeat=3)
    configs = [repeater.suggest(f"t{i}") for i in range(6)]
    assert inner.suggested == 2
    assert [c[TRIAL_INDEX] for c in configs] == [0, 1, 2, 0, 1, 2]
    assert [c["mask.ratio"] for c in configs] == pytest.approx([0.1, 0.1, 0.1, 0.2, 0.2, 0.2])


def test_seed_repeater__state_saved_mid_group_resumes_the_group() -> None:
    inner = _Counter()
    repeater = SeedRepeater(inner, repeat=3)
    repeater.suggest("a0"), repeater.suggest("a1")
    repeater.on_trial_complete("a0", {"probe_acc": 0.6})
    state = copy.deepcopy(repeater.get_state())  # a copy, as Tune's saved experiment holds

    resumed_inner = _Counter()
    resumed = SeedRepeater(resumed_inner, repeat=3)
    resumed.set_state(state)
    assert resumed.suggest("a2")[TRIAL_INDEX] == 2 and resumed_inner.suggested == 0
    resumed.on_trial_complete("a1", {"probe_acc": 0.7})
    resumed.on_trial_complete("a2", {"probe_acc": 0.8})
    ((primary, result, error),) = resumed_inner.told
    assert primary == "a0" and not error and math.isclose(result["probe_acc"], 0.7)


def test_seed_repeater__resumes_state_saved_by_the_repeater_subclass_it_replaced() -> None:
    # Sweeps interrupted before this class stopped subclassing Tune's Repeater saved that class's state.
    old = Repeater(_Recorder(), repeat=3)
    for trial_id in ("b0", "b1", "b2"):
        old.suggest(trial_id)
    old.on_trial_complete("b0", {"probe_acc": 0.5})
    state = copy.deepcopy(old.get_state())

    inner = _Counter()
    resumed = SeedRepeater(inner, repeat=3)
    resumed.set_state(state)
    resumed.on_trial_complete("b1", {"probe_acc": 0.6})
    resumed.on_trial_complete("b2", {FAILED_KEY: 1.0})
    assert inner.told == [("b0", None, True)] and inner.suggested == 0
    assert resumed.suggest("c0")[TRIAL_INDEX] == 0 and inner.suggested == 1


def test_seed_repeater__resumes_the_repeater_subclass_state_mid_group() -> None:
    old = Repeater(_Recorder(), repeat=2)
    for trial_id in ("b0", "b1", "c0"):  # b full, c still handing out its second seed
        old.suggest(trial_id)
    state = copy.deepcopy(old.get_state())

    inner = _Counter()
    resumed = SeedRepeater(inner, repeat=2)
    resumed.set_state(state)
    assert resumed.suggest("c1")[TRIAL_INDEX] == 1 and inner.suggested == 0
    assert resumed.suggest("d0")[TRIAL_INDEX] == 0 and inner.suggested == 1
    resumed.on_trial_complete("c0", {"probe_acc": 0.4})
    resumed.on_trial_complete("c1", {"probe_acc": 0.6})
    ((primary, result, error),) = inner.told
    assert primary == "c0" and not error and math.isclose(result["probe_acc"], 0.5)


def test_seed_repeater__resumes_a_state_that_still_names_its_open_group() -> None:
    # The first wrapper version saved the group still handing out repeats as "open" beside the groups.
    repeater = SeedRepeater(_Counter(), repeat=2)
    repeater.suggest("a0")
    state = {**copy.deepcopy(repeater.get_state()), "open": "a0"}

    inner = _Counter()
    resumed = SeedRepeater(inner, repeat=2)
    resumed.set_state(state)
    assert resumed.suggest("a1")[TRIAL_INDEX] == 1 and inner.suggested == 0
    assert resumed.suggest("b0")[TRIAL_INDEX] == 0 and inner.suggested == 1
