"""Tests of the mean ± CI tables: per parameter level and the leaderboard with its comparison columns."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from orchestrator.report import frames, summary
from orchestrator.report import stats as rs
from tests.orchestrator.report.conftest import ema_trials, make_runs


def test_parameter_table__mean_and_t_interval_per_value() -> None:
    runs = make_runs(ema_trials({0.99: [0.8, 0.82, 0.84], 0.996: [0.7, 0.71, 0.75]}), ["ema.momentum_start"])
    trials = frames.trials_frame(runs, frames.sweep_info(runs))
    table = summary.parameter_table(trials, "ema.momentum_start", ["probe_acc"])
    assert table["ema.momentum_start"].tolist() == [0.99, 0.996]
    assert table["n"].tolist() == [3, 3]
    for row, values in zip(table.itertuples(), ([0.8, 0.82, 0.84], [0.7, 0.71, 0.75]), strict=True):
        half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
        assert row.probe_acc_mean == pytest.approx(np.mean(values))
        assert row.probe_acc_ci == pytest.approx(half)
    assert table["probe_acc_mean"].iloc[0] == pytest.approx(0.82)
    assert table["probe_acc_ci"].iloc[0] == pytest.approx(4.303 * 0.02 / math.sqrt(3), rel=1e-3)


def test_summarize__failed_trials_excluded() -> None:
    trials_in = ema_trials({0.99: [0.8, 0.82, 0.1]})
    trials_in[2]["status"] = "FAILED"
    runs = make_runs(trials_in, ["ema.momentum_start"])
    table = summary.parameter_table(
        frames.trials_frame(runs, frames.sweep_info(runs)), "ema.momentum_start", ["probe_acc"]
    )
    assert table["n"].tolist() == [2] and table["probe_acc_mean"].iloc[0] == pytest.approx(0.81)


def test_leaderboard__ranks_configs_and_keeps_all_failed_last() -> None:
    trials_in = ema_trials({0.99: [0.7, 0.72], 0.996: [0.8, 0.82], 0.999: [0.9]})
    trials_in[-1]["status"] = "FAILED"
    runs = make_runs(trials_in, ["ema.momentum_start"])
    info = frames.sweep_info(runs)
    board = summary.leaderboard(frames.trials_frame(runs, info), info, ["probe_acc"])
    assert board["ema.momentum_start"].tolist() == [0.996, 0.99, 0.999]
    assert board["rank"].tolist() == [1, 2, 3]
    assert board["n"].tolist() == [2, 2, 0] and board["trials"].tolist() == [2, 2, 1]
    assert board["seeds"].tolist() == ["2/2", "2/2", "0/1"] and board["failed"].tolist() == [0, 0, 1]
    assert np.isnan(board["probe_acc_mean"].iloc[2])


CONTRACT = ["seeds", "diff_vs_best", "diff_ci_low", "diff_ci_high", "p_vs_best_adjusted"]


def _board(trials_in: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = make_runs(trials_in, ["ema.momentum_start"])
    info = frames.sweep_info(runs)
    trials = frames.trials_frame(runs, info)
    return summary.leaderboard(trials, info, ["probe_acc"]), trials


def test_leaderboard__contract_columns_empty_on_the_best_row() -> None:
    board, trials = _board(
        ema_trials({0.99: [0.70, 0.72, 0.71], 0.996: [0.80, 0.83, 0.81], 0.999: [0.5, 0.6, 0.4]})
    )
    assert set(CONTRACT) <= set(board.columns) and "probe_acc_mean" in board and "probe_acc_ci" in board
    assert board[CONTRACT[1:]].iloc[0].isna().all() and pd.isna(board["distinguishable_from_best"].iloc[0])
    assert board[CONTRACT[1:]].iloc[1:].notna().all().all()
    # The leaderboard's figures are the report's one comparison, not a second computation.
    ranked = trials[trials["ranked"]]
    direct = rs.compare_with_best(ranked["probe_acc"], ranked["config_id"], ranked["seed"]).table
    for row in board.itertuples():
        if row.rank > 1:
            assert row.diff_vs_best == direct.at[row.config_id, "diff"]
            assert row.p_vs_best_adjusted == direct.at[row.config_id, "p_adjusted"]
            assert row.diff_ci_low < row.diff_vs_best < row.diff_ci_high


def test_leaderboard__failed_seed_shows_2_of_3() -> None:
    trials_in = ema_trials({0.99: [0.70, 0.72, 0.71], 0.996: [0.80, 0.83, 0.81]})
    trials_in[4].update(status="FAILED", reason="DivergenceError: loss diverged (nan) at epoch 2")
    board, _ = _board(trials_in)
    assert board.set_index("ema.momentum_start").loc[0.996, ["seeds", "failed"]].tolist() == ["2/3", 1]
    assert board.set_index("ema.momentum_start").at[0.99, "seeds"] == "3/3"


def test_leaderboard__early_stopped_trials_are_not_in_the_means() -> None:
    trials_in = ema_trials({0.99: [0.70, 0.72], 0.996: [0.80, 0.82]})
    trials_in.append(
        {"params": {"ema.momentum_start": 0.99, "train.seed": 2}, "seed": 2, "metrics": {"probe_acc": 0.1},
         "stopped": True}
    )  # fmt: skip
    board, trials = _board(trials_in)
    row = board.set_index("ema.momentum_start").loc[0.99]
    assert (
        row["probe_acc_mean"] == pytest.approx(0.71) and row["seeds"] == "2/3" and row["stopped_early"] == 1
    )
    assert trials["outcome"].tolist()[-1] == "stopped early" and not trials["ranked"].iloc[-1]


def test_param_levels__many_sampled_values_are_binned() -> None:
    trials = pd.DataFrame({"optim.lr": np.logspace(-4, -2, 40)})
    levels = summary.param_levels(trials, "optim.lr", max_levels=12)
    assert 2 <= levels.map(str).nunique() <= 8
