"""Tests of the trials frame: params cast back from MLflow strings, outcomes and flags, histories."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from orchestrator.report import frames
from tests.orchestrator.report.conftest import ema_trials, make_runs


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3),
        ("-2", -2),
        ("0.996", 0.996),
        ("1e-3", 1e-3),
        ("None", None),
        ("True", True),
        ("False", False),
        ("l2", "l2"),
        ("fashion_mnist", "fashion_mnist"),
        (None, None),
    ],
)
def test_cast_param_value__types(raw: Any, expected: Any) -> None:
    value = frames.cast_param_value(raw)
    assert value == expected and type(value) is type(expected)


def test_cast_params__columns_get_numeric_dtypes() -> None:
    runs = pd.DataFrame(
        {
            "params.predictor.depth": ["1", "3"],
            "params.mask.ratio": ["0.4", "1"],
            "params.data.subset": ["None", "3000"],
            "params.data.hflip": ["False", "True"],
            "params.loss.kind": ["l2", "smooth_l1"],
            "tags.x": ["a", "b"],
        }
    )
    params = frames.cast_params(runs)
    assert list(params.columns) == ["predictor.depth", "mask.ratio", "data.subset", "data.hflip", "loss.kind"]
    assert params["predictor.depth"].dtype == np.int64
    assert params["mask.ratio"].dtype == np.float64 and params["mask.ratio"].tolist() == [0.4, 1.0]
    assert params["data.subset"].tolist() == [None, 3000]
    assert params["data.hflip"].tolist() == [False, True]
    assert params["loss.kind"].tolist() == ["l2", "smooth_l1"]


def test_trials_frame__tidy_columns_seed_flags_duration() -> None:
    trials = ema_trials({0.99: [0.8, 0.82]})
    trials[1].update(status="FAILED", reason="Traceback...\nRuntimeError: NaN loss", duration=50)
    trials[0]["collapsed"] = True
    runs = make_runs(trials, ["ema.momentum_start"])
    info = frames.sweep_info(runs)
    frame = frames.trials_frame(runs, info)
    assert info.parent_run_id == "p0" and info.swept_params == ("ema.momentum_start",)
    assert frame["run_id"].tolist() == ["r0", "r1"]
    assert frame["seed"].tolist() == [0, 1]
    assert frame["ema.momentum_start"].tolist() == [0.99, 0.99]
    assert frame["config"].tolist() == ["ema.momentum_start=0.99"] * 2
    assert frame["collapsed"].tolist() == [True, False]
    assert frame["status"].tolist() == ["FINISHED", "FAILED"]
    assert frame["failure_reason"].iloc[1].endswith("NaN loss")
    assert frame["duration_s"].tolist() == [100.0, 50.0]


def test_sweep_info__infers_swept_params_without_tag() -> None:
    runs = make_runs(ema_trials({0.99: [0.8], 0.996: [0.9]}), ["ema.momentum_start"])
    runs["tags.jepa.swept_params"] = None
    # train.seed varies too, and is excluded
    assert frames.sweep_info(runs).swept_params == ("ema.momentum_start",)


def test_tidy_history__last_value_per_step_wins() -> None:
    history = pd.DataFrame(
        {"run_id": ["a"] * 3, "key": ["probe_acc"] * 3, "step": [1, 2, 2], "value": [0.1, 0.2, 0.3],
         "timestamp": [1, 2, 3]}
    )  # fmt: skip
    assert frames.tidy_history(history)["value"].tolist() == [0.1, 0.3]


def test_learning_curves__mean_and_band_over_seeds() -> None:
    runs = make_runs(ema_trials({0.99: [0.8, 0.8]}), ["ema.momentum_start"])
    trials = frames.trials_frame(runs, frames.sweep_info(runs))
    history = pd.DataFrame(
        {"run_id": ["r0", "r0", "r1", "r1"], "key": ["train_loss"] * 4, "step": [1, 2, 1, 2],
         "value": [1.0, 0.5, 3.0, 0.5]}
    )  # fmt: skip
    curves = frames.learning_curves(history, trials, "train_loss", trials["ema.momentum_start"])
    assert curves["mean"].tolist() == [2.0, 0.5]
    assert curves["ci"].iloc[0] == pytest.approx(
        stats.t.ppf(0.975, 1) * np.std([1, 3], ddof=1) / math.sqrt(2)
    )
    assert curves["ci"].iloc[1] == 0.0
