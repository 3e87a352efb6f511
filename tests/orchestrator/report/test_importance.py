"""Tests of parameter importance: fANOVA with its bootstrap spread, its absence, and its fallback."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.report import importance as ri
from tests.orchestrator.report.conftest import TWELVE, two_param_trials


def test_param_importance__fanova_finds_the_driving_param_with_its_spread() -> None:
    trials = two_param_trials(TWELVE)
    importance = ri.param_importance(trials, ["mask.ratio", "predictor.depth"], "probe_acc")
    assert importance.method == "Optuna fANOVA" and importance.note is None
    assert importance.values["mask.ratio"] > 0.8 > importance.values["predictor.depth"]
    assert sum(importance.values.values()) == pytest.approx(1.0)
    assert importance.resamples == ri.IMPORTANCE_RESAMPLES == 20
    for p in importance.values:
        assert 0.0 <= importance.low[p] <= importance.high[p] <= 1.0
    assert importance.low["mask.ratio"] > importance.high["predictor.depth"]


def test_param_importance__absent_below_10_configurations_with_reason() -> None:
    importance = ri.param_importance(two_param_trials(), ["mask.ratio", "predictor.depth"], "probe_acc")
    assert importance.values == {} and importance.method == "none"
    assert importance.note == "fewer than 10 configurations (9): importance would not mean anything"


def test_param_importance__falls_back_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> dict[str, float]:
        raise RuntimeError("no sklearn")

    monkeypatch.setattr(ri, "fanova_importance", broken)
    importance = ri.param_importance(two_param_trials(TWELVE), ["mask.ratio", "predictor.depth"], "probe_acc")
    assert "failed (RuntimeError: no sklearn)" in importance.note
    assert max(importance.values, key=importance.values.get) == "mask.ratio"
