"""Tests of sweep reports: pure frame functions on hand-built frames, then whole reports from a real MLflow
sqlite store (no Ray: the store is filled with the layout the sweep writes)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from orchestrator.report import compose as report
from orchestrator.report import frames as rd
from orchestrator.report import stats as rs

T0 = pd.Timestamp("2026-11-27 10:00", tz="UTC")


def make_runs(
    trials: list[dict[str, Any]], swept: list[str], metric: str = "probe_acc", goal: str = "maximize"
) -> pd.DataFrame:
    """A search_runs-like frame: a parent run and one child per dict (params as strings, like MLflow).

    Trials carry ``jepa.metrics_version`` = "2" (validation-split metrics) unless the dict says
    ``"metrics_version": None``; ``"stopped": True`` tags an ASHA stop."""
    rows: list[dict[str, Any]] = [
        {
            "run_id": "p0",
            "status": "RUNNING",
            "start_time": T0,
            "end_time": pd.NaT,
            "tags.jepa.role": "sweep",
            "tags.jepa.sweep": "fixture",
            "tags.jepa.swept_params": json.dumps(swept),
            "tags.jepa.metric": metric,
            "tags.jepa.metric_goal": goal,
            "tags.jepa.git_sha": "abc123",
            "tags.jepa.host": "testhost",
            "tags.jepa.device": "cpu",
        }
    ]
    for i, t in enumerate(trials):
        row: dict[str, Any] = {
            "run_id": f"r{i}",
            "status": t.get("status", "FINISHED"),
            "start_time": T0 + pd.Timedelta(seconds=10 * i),
            "end_time": T0 + pd.Timedelta(seconds=10 * i + t.get("duration", 100)),
            "tags.mlflow.parentRunId": "p0",
            "tags.jepa.role": "trial",
            "tags.jepa.seed": str(t.get("seed", 0)),
            "tags.jepa.collapsed": "true" if t.get("collapsed") else None,
            "tags.jepa.failure_reason": t.get("reason"),
            "tags.jepa.stopped_early": "true" if t.get("stopped") else None,
            "tags.jepa.metrics_version": t.get("metrics_version", "2"),
        }
        row.update({f"params.{k}": str(v) for k, v in t["params"].items()})
        row.update({f"metrics.{k}": v for k, v in t.get("metrics", {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def ema_trials(values: dict[float, list[float]]) -> list[dict[str, Any]]:
    """One trial per (EMA momentum value, seed) with the given probe accuracies."""
    return [
        {"params": {"ema.momentum_start": v, "train.seed": s}, "seed": s, "metrics": {"probe_acc": acc}}
        for v, accs in values.items()
        for s, acc in enumerate(accs)
    ]


# --------------------------------------------------------------------------------------------- casting
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
    value = rd.cast_param_value(raw)
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
    params = rd.cast_params(runs)
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
    info = rd.sweep_info(runs)
    frame = rd.trials_frame(runs, info)
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
    assert rd.sweep_info(runs).swept_params == ("ema.momentum_start",)  # train.seed varies too, is excluded


def test_display_labels__shortest_text_that_keeps_values_apart() -> None:
    names = rd.display_labels([0.4195254015709299, 0.375034884505077, 0.41953, 3, None, "l2"])
    # 0.4195 would merge the first and third: 6 significant digits are the fewest that keep them apart.
    assert names["0.4195254015709299"] == "0.419525" and names["0.41953"] == "0.41953"
    assert names["0.375034884505077"] == "0.375035"
    assert (names["3"], names["None"], names["l2"]) == ("3", "None", "l2")
    assert rd.display_labels([0.9957262520726806, 0.9991547962247598]) == {
        "0.9957262520726806": "0.9957",
        "0.9991547962247598": "0.9992",
    }


# --------------------------------------------------------------------------------------------- statistics
def test_parameter_table__mean_and_t_interval_per_value() -> None:
    runs = make_runs(ema_trials({0.99: [0.8, 0.82, 0.84], 0.996: [0.7, 0.71, 0.75]}), ["ema.momentum_start"])
    trials = rd.trials_frame(runs, rd.sweep_info(runs))
    table = rd.parameter_table(trials, "ema.momentum_start", ["probe_acc"])
    assert table["ema.momentum_start"].tolist() == [0.99, 0.996]
    assert table["n"].tolist() == [3, 3]
    for row, values in zip(table.itertuples(), ([0.8, 0.82, 0.84], [0.7, 0.71, 0.75]), strict=True):
        half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
        assert row.probe_acc_mean == pytest.approx(np.mean(values))
        assert row.probe_acc_ci == pytest.approx(half)
    assert table["probe_acc_mean"].iloc[0] == pytest.approx(0.82)
    assert table["probe_acc_ci"].iloc[0] == pytest.approx(4.303 * 0.02 / math.sqrt(3), rel=1e-3)


def test_t_interval__single_value_has_no_interval() -> None:
    assert rs.t_interval([0.5]) == (0.5, pytest.approx(float("nan"), nan_ok=True), 1)
    assert rs.t_interval([np.nan, 0.5, 0.7])[2] == 2


def test_summarize__failed_trials_excluded() -> None:
    trials_in = ema_trials({0.99: [0.8, 0.82, 0.1]})
    trials_in[2]["status"] = "FAILED"
    runs = make_runs(trials_in, ["ema.momentum_start"])
    table = rd.parameter_table(
        rd.trials_frame(runs, rd.sweep_info(runs)), "ema.momentum_start", ["probe_acc"]
    )
    assert table["n"].tolist() == [2] and table["probe_acc_mean"].iloc[0] == pytest.approx(0.81)


def _compare(
    values: dict[float, list[float]],
    goal: str = "maximize",
    failed: tuple[int, ...] = (),
    power: bool = False,
) -> rd.Comparison | None:
    trials_in = ema_trials(values)
    for i in failed:
        trials_in[i]["status"] = "FAILED"
    runs = make_runs(trials_in, ["ema.momentum_start"], goal=goal)
    trials = rd.trials_frame(runs, rd.sweep_info(runs))
    by, what = trials["ema.momentum_start"], "`ema.momentum_start` ="
    return rd.compare_best(trials, by, "probe_acc", goal, what, power=power)


TUKEY = "seed-blocked two-way ANOVA, Tukey studentized range, simultaneous 95%"


def test_compare_best__distinguishable_for_separated_seeds() -> None:
    verdict = _compare({0.99: [0.70, 0.71, 0.72], 0.996: [0.80, 0.81, 0.82], 0.999: [0.5, 0.5, 0.51]})
    assert verdict is not None and verdict.distinguishable
    assert (verdict.best, verdict.runner_up) == ("0.996", "0.99")
    assert verdict.result.table.at["0.99", "p_adjusted"] < 0.05
    assert (
        f"by {TUKEY}" in verdict.sentence and ": distinguishable from all 2; runner-up " in verdict.sentence
    )


def test_compare_best__not_distinguishable_for_overlapping_seeds() -> None:
    verdict = _compare({0.99: [0.70, 0.80, 0.75], 0.996: [0.72, 0.81, 0.74]}, power=True)
    assert verdict is not None and not verdict.distinguishable
    assert verdict.result.table.at["0.99", "p_adjusted"] >= 0.05
    assert (
        f"by {TUKEY}" in verdict.sentence and ": not distinguishable from it; runner-up " in verdict.sentence
    )
    assert (
        "seeds per configuration would detect a best − runner-up difference of 0.67 points"
        in verdict.sentence
    )


def test_compare_best__blocking_by_seed_sees_a_consistent_gain_welch_misses() -> None:
    """Seeds differ a lot from one another, and 0.996 beats 0.99 on every one of them by 1.5-3 points. With
    two groups the blocked Tukey test is the paired t-test; the unpaired test on the same numbers says
    nothing."""
    a, b = [0.62, 0.715, 0.83], [0.60, 0.70, 0.80]
    verdict = _compare({0.996: a, 0.99: b})
    assert verdict is not None and verdict.best == "0.996" and verdict.distinguishable
    assert verdict.result.table.at["0.99", "p_adjusted"] == pytest.approx(
        stats.ttest_rel(a, b).pvalue, rel=1e-5
    )
    assert stats.ttest_ind(a, b, equal_var=False).pvalue > 0.5


def test_compare_best__failed_seed_leaves_the_shared_seeds_and_is_flagged() -> None:
    """0.99 lost seed 0: the difference is estimated from the seeds both finished (with two groups, the paired
    t-test over seeds 1 and 2), and the sentence says the runner-up's figures are over survivors."""
    verdict = _compare({0.99: [0.70, 0.71, 0.73], 0.996: [0.80, 0.81, 0.82]}, failed=(0,))
    assert verdict is not None and verdict.runner_up == "0.99"
    assert verdict.result.table.at["0.99", "p_adjusted"] == pytest.approx(
        stats.ttest_rel([0.81, 0.82], [0.71, 0.73]).pvalue, rel=1e-5
    )
    assert "2/3 seeds complete; 1 failed, so its figures are over the survivors" in verdict.sentence


def test_compare_best__one_seed_is_not_distinguishable() -> None:
    verdict = _compare({0.99: [0.5], 0.996: [0.9]})
    assert verdict is not None and not verdict.distinguishable
    assert "no test: no residual degrees of freedom" in verdict.sentence


def test_compare_best__minimize_picks_lowest() -> None:
    verdict = _compare({0.99: [0.1, 0.11], 0.996: [0.5, 0.52]}, goal="minimize")
    assert verdict is not None and verdict.best == "0.99"
    assert verdict.result.table.at["0.996", "diff"] == pytest.approx(-0.405)  # best minus other


def test_leaderboard__ranks_configs_and_keeps_all_failed_last() -> None:
    trials_in = ema_trials({0.99: [0.7, 0.72], 0.996: [0.8, 0.82], 0.999: [0.9]})
    trials_in[-1]["status"] = "FAILED"
    runs = make_runs(trials_in, ["ema.momentum_start"])
    info = rd.sweep_info(runs)
    board = rd.leaderboard(rd.trials_frame(runs, info), info, ["probe_acc"])
    assert board["ema.momentum_start"].tolist() == [0.996, 0.99, 0.999]
    assert board["rank"].tolist() == [1, 2, 3]
    assert board["n"].tolist() == [2, 2, 0] and board["trials"].tolist() == [2, 2, 1]
    assert board["seeds"].tolist() == ["2/2", "2/2", "0/1"] and board["failed"].tolist() == [0, 0, 1]
    assert np.isnan(board["probe_acc_mean"].iloc[2])


CONTRACT = ["seeds", "diff_vs_best", "diff_ci_low", "diff_ci_high", "p_vs_best_adjusted"]


def _board(trials_in: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = make_runs(trials_in, ["ema.momentum_start"])
    info = rd.sweep_info(runs)
    trials = rd.trials_frame(runs, info)
    return rd.leaderboard(trials, info, ["probe_acc"]), trials


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
    levels = rd.param_levels(trials, "optim.lr", max_levels=12)
    assert 2 <= levels.map(str).nunique() <= 8


def test_tidy_history__last_value_per_step_wins() -> None:
    history = pd.DataFrame(
        {"run_id": ["a"] * 3, "key": ["probe_acc"] * 3, "step": [1, 2, 2], "value": [0.1, 0.2, 0.3],
         "timestamp": [1, 2, 3]}
    )  # fmt: skip
    assert rd.tidy_history(history)["value"].tolist() == [0.1, 0.3]


def test_learning_curves__mean_and_band_over_seeds() -> None:
    runs = make_runs(ema_trials({0.99: [0.8, 0.8]}), ["ema.momentum_start"])
    trials = rd.trials_frame(runs, rd.sweep_info(runs))
    history = pd.DataFrame(
        {"run_id": ["r0", "r0", "r1", "r1"], "key": ["train_loss"] * 4, "step": [1, 2, 1, 2],
         "value": [1.0, 0.5, 3.0, 0.5]}
    )  # fmt: skip
    curves = rd.learning_curves(history, trials, "train_loss", trials["ema.momentum_start"])
    assert curves["mean"].tolist() == [2.0, 0.5]
    assert curves["ci"].iloc[0] == pytest.approx(
        stats.t.ppf(0.975, 1) * np.std([1, 3], ddof=1) / math.sqrt(2)
    )
    assert curves["ci"].iloc[1] == 0.0


SEEDY = {0.99: [0.80, 0.90, 0.70], 0.996: [0.805, 0.905, 0.71]}  # seeds 20 points apart, settings 0.67
ONE_LINE_PER_SEED = "one line per seed; black: mean over seeds"


def _seedy(failed: tuple[int, ...] = (), stopped: tuple[int, ...] = ()) -> pd.DataFrame:
    trials_in = ema_trials(SEEDY)
    for i in failed:
        trials_in[i]["status"] = "FAILED"
    for i in stopped:
        trials_in[i]["stopped"] = True
    runs = make_runs(trials_in, ["ema.momentum_start"])
    return rd.trials_frame(runs, rd.sweep_info(runs))


def test_per_seed__one_row_per_seed_and_level_of_the_ranked_trials() -> None:
    trials = _seedy(failed=(2,), stopped=(5,))  # seed 2 failed at 0.99 and was stopped early at 0.996
    seeds = rd.per_seed(trials, rd.param_levels(trials, "ema.momentum_start"), "probe_acc")
    assert seeds.columns.tolist() == ["seed", "level", "value", "n"]
    pairs = list(zip(seeds["seed"], seeds["level"], strict=True))
    assert pairs == [(0, "0.99"), (0, "0.996"), (1, "0.99"), (1, "0.996")]
    assert seeds["value"].tolist() == pytest.approx([0.80, 0.805, 0.90, 0.905]) and set(seeds["n"]) == {1}


def test_per_seed__other_swept_params_are_averaged_per_seed_and_level() -> None:
    trials_in = [
        {"params": {"mask.ratio": r, "predictor.depth": d, "train.seed": s}, "seed": s,
         "metrics": {"probe_acc": 0.5 + r + 0.01 * d + 0.1 * s}}
        for r in (0.2, 0.4) for d in (1, 2, 3) for s in range(3)
    ]  # fmt: skip
    runs = make_runs(trials_in, ["mask.ratio", "predictor.depth"])
    trials = rd.trials_frame(runs, rd.sweep_info(runs))
    seeds = rd.per_seed(trials, trials["mask.ratio"], "probe_acc")
    assert len(seeds) == 6 and set(seeds["n"]) == {3}
    for row in seeds.itertuples():  # the mean over depths 1, 2 and 3
        assert row.value == pytest.approx(0.5 + float(row.level) + 0.02 + 0.1 * row.seed)


def test_seed_note__seed_spread_beside_setting_spread_in_points() -> None:
    trials = _seedy()
    caption, sentence = rd.seed_note(
        rd.per_seed(trials, trials["ema.momentum_start"], "probe_acc"), "ema.momentum_start", "probe_acc"
    )
    assert caption == f"probe_acc per seed across ema.momentum_start ({ONE_LINE_PER_SEED})"
    # Seeds span 20 and 19.5 points at the two values: 19.75 on average; the means 80.00 and 80.67.
    assert sentence == (
        "Seed against setting on `probe_acc`: at one value of `ema.momentum_start` the seeds span 19.75 "
        "points on average (highest − lowest seed at each of the 2 values two or more seeds reached); the "
        "mean over seeds spans 0.67 points across the 2 values (highest − lowest)."
    )
    failed = _seedy(failed=(2,))  # 0.99 keeps seeds 0 and 1: 10 points apart, mean 85.00
    _, sentence = rd.seed_note(
        rd.per_seed(failed, failed["ema.momentum_start"], "probe_acc"), "ema.momentum_start", "probe_acc",
        ("mask.ratio",),
    )  # fmt: skip
    assert "the seeds (each a seed's mean over `mask.ratio`) span 14.75 points on average" in sentence
    assert "the mean over seeds spans 4.33 points across the 2 values" in sentence


def test_seed_note__absent_without_two_seeds_or_two_levels() -> None:
    trials = _seedy()
    for part in (trials[trials["seed"] == 0], trials[trials["ema.momentum_start"] == 0.99]):
        seeds = rd.per_seed(part, part["ema.momentum_start"], "probe_acc")
        assert len(seeds) in (2, 3) and rd.seed_note(seeds, "ema.momentum_start", "probe_acc") is None


def _two_param_trials(ratios: tuple[float, ...] = (0.2, 0.4, 0.6)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    trials_in = [
        {
            "params": {"mask.ratio": ratio, "predictor.depth": depth, "train.seed": seed},
            "seed": seed,
            "metrics": {"probe_acc": 0.5 + ratio + 0.001 * depth + rng.normal(0, 0.005)},
        }
        for ratio in ratios
        for depth in (1, 2, 3)
        for seed in range(3)
    ]
    runs = make_runs(trials_in, ["mask.ratio", "predictor.depth"])
    return rd.trials_frame(runs, rd.sweep_info(runs))


TWELVE = (0.2, 0.4, 0.6, 0.8)  # x 3 depths: 12 configurations, enough for an importance


def test_param_importance__fanova_finds_the_driving_param_with_its_spread() -> None:
    trials = _two_param_trials(TWELVE)
    importance = rd.param_importance(trials, ["mask.ratio", "predictor.depth"], "probe_acc")
    assert importance.method == "Optuna fANOVA" and importance.note is None
    assert importance.values["mask.ratio"] > 0.8 > importance.values["predictor.depth"]
    assert sum(importance.values.values()) == pytest.approx(1.0)
    assert importance.resamples == rd.IMPORTANCE_RESAMPLES == 20
    for p in importance.values:
        assert 0.0 <= importance.low[p] <= importance.high[p] <= 1.0
    assert importance.low["mask.ratio"] > importance.high["predictor.depth"]


def test_param_importance__absent_below_10_configurations_with_reason() -> None:
    importance = rd.param_importance(_two_param_trials(), ["mask.ratio", "predictor.depth"], "probe_acc")
    assert importance.values == {} and importance.method == "none"
    assert importance.note == "fewer than 10 configurations (9): importance would not mean anything"


def test_param_importance__falls_back_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> dict[str, float]:
        raise RuntimeError("no sklearn")

    monkeypatch.setattr(rs, "fanova_importance", broken)
    importance = rd.param_importance(
        _two_param_trials(TWELVE), ["mask.ratio", "predictor.depth"], "probe_acc"
    )
    assert "failed (RuntimeError: no sklearn)" in importance.note
    assert max(importance.values, key=importance.values.get) == "mask.ratio"


# --------------------------------------------------------------------------------------------- rendering
def test_doc__markdown_and_html_from_the_same_blocks(tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    png.write_bytes(b"\x89PNG fake")
    doc = report.Doc()
    doc.heading(2, "Parameter `a|b`")
    doc.table(pd.DataFrame({"x": ["1|2"], "y": ["<b>"]}))
    doc.image(png, "caption")
    md, page = doc.to_markdown(), doc.to_html("t")
    assert "## Parameter `a|b`" in md and "| 1\\|2 | <b> |" in md and "![caption](p.png)" in md
    assert "<code>a|b</code>" in page and "&lt;b&gt;" in page and "data:image/png;base64," in page


@pytest.mark.parametrize("ratios", [(0.2, 0.4, 0.6), TWELVE], ids=["9 configs", "12 configs"])
def test_build_report_from_frames__multi_param_sections(tmp_path: Path, ratios: tuple[float, ...]) -> None:
    trials = _two_param_trials(ratios)
    columns = ["mask.ratio", "predictor.depth", "seed", "probe_acc"]
    runs = make_runs(
        [
            {"params": {"mask.ratio": r, "predictor.depth": d, "train.seed": s}, "seed": s,
             "metrics": {"probe_acc": a}}
            for r, d, s, a in trials[columns].itertuples(index=False)
        ],
        ["mask.ratio", "predictor.depth"],
    )  # fmt: skip
    out = report.build_report_from_frames(runs, None, tmp_path)
    md = (out / "report.md").read_text()
    assert out.parent == tmp_path / "fixture" and (out / "parallel_coordinates.png").is_file()
    assert "## Parameter `predictor.depth`" in md and "`mask.ratio` left in the residual" in md
    assert "No per-epoch metric history" in md
    pooled = f"({ONE_LINE_PER_SEED}; a point is the seed's mean over predictor.depth)"
    assert f"![probe_acc per seed across mask.ratio {pooled}](mask_ratio_seeds.png)" in md
    depth = _section(md, "## Parameter `predictor.depth`")
    assert "the seeds (each a seed's mean over `mask.ratio`) span" in depth
    assert "(predictor_depth_seeds.png)" in depth
    configs = 3 * len(ratios)
    assert len(pd.read_csv(out / "leaderboard.csv")) == configs
    if configs < 10:
        assert "Parameter importance: absent — fewer than 10 configurations (9)" in md
        assert not (out / "param_importance.png").exists()
    else:
        assert "| parameter | importance (mean) | 5–95% of resamples |" in md
        assert "the mean over 20 bootstrap resamples" in md and (out / "param_importance.png").is_file()


def _report(tmp_path: Path, trials_in: list[dict[str, Any]], history: pd.DataFrame | None = None) -> str:
    out = report.build_report_from_frames(make_runs(trials_in, ["ema.momentum_start"]), history, tmp_path)
    return (out / "report.md").read_text()


def _section(md: str, heading: str) -> str:
    start = md.index(heading)
    end = md.find("\n## ", start + len(heading))
    return md[start : end if end != -1 else len(md)]


def test_build_report__failed_seed_counts_against_its_configuration(tmp_path: Path) -> None:
    trials_in = ema_trials({0.99: [0.70, 0.72, 0.71], 0.996: [0.80, 0.83, 0.81]})
    trials_in[5].update(
        status="FAILED", reason="Traceback...\nDivergenceError: loss diverged (nan) at epoch 2"
    )
    del trials_in[5]["metrics"]
    md = _report(tmp_path, trials_in)
    board = _section(md, "## Leaderboard")
    assert "| 1 ⚠ | 0.996 | 2/3 |" in board and "| 1 of 3 seeds failed |" in board
    assert "1 failed, so its figures are over the survivors and may flatter it" in board
    failed = _section(md, "## Failed and collapsed trials")
    assert "ema.momentum_start=0.996 | 2 | FAILED" in failed and "DivergenceError: loss diverged" in failed
    assert "t-test" not in md and "Welch" not in md


def test_build_report__early_stopped_trials_listed_apart_with_their_epoch(tmp_path: Path) -> None:
    trials_in = ema_trials({0.99: [0.70, 0.72], 0.996: [0.80, 0.82]})
    for t in trials_in:
        t["params"]["train.epochs"] = 10
    trials_in.append(
        {"params": {"ema.momentum_start": 0.99, "train.seed": 2, "train.epochs": 10}, "seed": 2,
         "metrics": {"probe_acc": 0.1}, "stopped": True}
    )  # fmt: skip
    history = pd.DataFrame(
        {"run_id": [f"r{i}" for i in range(5) for _ in range(3)], "key": ["probe_acc"] * 15,
         "step": [1, 2, 3] * 5, "value": [0.1, 0.2, 0.3] * 5}
    )  # fmt: skip
    history = history[~((history["run_id"] == "r4") & (history["step"] == 3))]
    md = _report(tmp_path, trials_in, history)
    assert "| 1 | 0.996 | 2/2 | 81.00 ± 12.71 † |" in md and "| 2 | 0.99 | 2/3 | 71.00 ± 12.71 † |" in md
    stopped = _section(md, "## Trials stopped early by the scheduler")
    assert "| r4 | ema.momentum_start=0.99 | 2 | 2 of 10 | 10.00 |" in stopped


def test_build_report__two_seed_intervals_are_marked(tmp_path: Path) -> None:
    md = _report(tmp_path, ema_trials({0.99: [0.70, 0.72], 0.996: [0.80, 0.83]}))
    board = _section(md, "## Leaderboard")
    assert "81.50 ± 19.06 †" in board and report.TWO_SEED_NOTE in board
    assert "12.7 standard errors either side of the mean" in report.TWO_SEED_NOTE
    assert bool(pd.read_csv(next(tmp_path.glob("*/*/leaderboard.csv")))["ci_from_2_seeds"].all())


def test_build_report__nothing_distinguishable_estimates_the_seeds_needed(tmp_path: Path) -> None:
    md = _report(tmp_path, ema_trials({0.99: [0.70, 0.80, 0.75], 0.996: [0.72, 0.81, 0.74]}))
    board = _section(md, "## Leaderboard")
    assert "not distinguishable from it" in board
    assert (
        "seeds per configuration would detect a best − runner-up difference of 0.67 points with 80% power"
        in board
    )
    assert "normal approximation with the Tukey critical value" in board


def test_build_report__test_figures_beside_and_never_used_to_choose(tmp_path: Path) -> None:
    trials_in = ema_trials({0.99: [0.70, 0.71, 0.72], 0.996: [0.80, 0.81, 0.83]})
    for t in trials_in:  # on the test split 0.99 looks better: the ranking must not care
        t["metrics"]["test_probe_acc"] = 1.5 - t["metrics"]["probe_acc"]
    md = _report(tmp_path, trials_in)
    board = _section(md, "## Leaderboard")
    assert "| rank | ema.momentum_start | seeds | probe acc (%) | test probe acc (%) |" in board
    assert board.index("| 1 | 0.996 |") < board.index("| 2 | 0.99 |")
    assert "`test_probe_acc` (the `test` columns) are scored once on the test split" in board
    assert "were not used to rank or choose" in board


def test_build_report__legacy_runs_are_labelled_test_split(tmp_path: Path) -> None:
    legacy = ema_trials({0.99: [0.70, 0.71, 0.72], 0.996: [0.80, 0.81, 0.83]})
    for t in legacy:
        t["metrics_version"] = None
    md = _report(tmp_path / "old", legacy)
    assert (
        rd.LEGACY_SPLIT_NOTE
        == "probe_acc/knn_acc measured on the test split (logged before validation splits)"
    )
    assert f"Splits: {rd.LEGACY_SPLIT_NOTE}" in md and "probe acc, test split (%)" in md
    assert "this ranking chooses on the test split" in md

    mixed = ema_trials({0.99: [0.70, 0.71, 0.72], 0.996: [0.80, 0.81, 0.83]})
    mixed[0]["metrics_version"] = None  # logged before the change, e.g. a resumed sweep
    mixed[0]["metrics"]["probe_acc"] = 0.99
    md = _report(tmp_path / "mixed", mixed)
    assert "1 completed trials have " + rd.LEGACY_SPLIT_NOTE in md
    assert "| 2 | 0.99 | 2/3 |" in md and "1 logged before validation splits" in md
    apart = _section(md, "## Trials logged before validation splits")
    assert "| r0 | ema.momentum_start=0.99 | 0 | 99.00 |" in apart


# --------------------------------------------------------------------------------------------- real MLflow
EPOCHS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real sqlite MLflow store holding one sweep: 2 EMA values x 3 seeds, one FAILED, one collapsed."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("ema_momentum", artifact_location=str(root / "artifacts"))
    parent = client.create_run(
        exp,
        tags={
            "jepa.role": "sweep", "jepa.sweep": "ema_momentum", "jepa.swept_params": '["ema.momentum_start"]',
            "jepa.metric": "probe_acc", "jepa.metric_goal": "maximize", "jepa.git_sha": "deadbeef",
            "jepa.host": "testhost", "jepa.device": "cpu",
        },
    ).info.run_id  # fmt: skip
    for i, (momentum, seed) in enumerate((m, s) for m in (0.99, 0.996) for s in range(3)):
        failed, collapsed = i == 2, i == 4
        tags = {
            "mlflow.parentRunId": parent, "jepa.role": "trial", "jepa.seed": str(seed),
            "jepa.config_id": f"cfg{momentum}", "jepa.device": "cpu",
        }  # fmt: skip
        if failed:
            tags["jepa.failure_reason"] = "RuntimeError: CUDA out of memory in epoch 2"
        if collapsed:
            tags["jepa.collapsed"] = "true"
        run = client.create_run(exp, tags=tags).info.run_id
        params = {"ema.momentum_start": momentum, "train.seed": seed, "mask.ratio": 0.4, "data.subset": None,
                  "model.embed_dim": 64, "eval.collapse_threshold": 0.05}  # fmt: skip
        epochs = 1 if failed else EPOCHS
        metrics = []
        for epoch in range(1, epochs + 1):
            # The seed moves both settings alike, plus a small interaction: residual variance to test with.
            acc = 0.5 + 0.1 * epoch + (0.05 + 0.001 * seed if momentum == 0.996 else 0.0) + 0.002 * seed
            values = {"probe_acc": acc, "knn_acc": acc - 0.02, "rankme": 1.0 if collapsed else 30.0 + epoch,
                      "train_loss": math.nan if failed else 1.0 / epoch,  # NaN: stored as 0 + is_nan
                      "img_per_s": 1000.0 + seed}  # fmt: skip
            metrics += [Metric(k, v, 1000 + epoch, epoch) for k, v in values.items()]
        client.log_batch(run, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
        client.set_terminated(run, "FAILED" if failed else "FINISHED")
    return {"uri": uri, "parent": parent, "root": root, "client": client}


def test_build_sweep_report__files_and_content(store: dict[str, Any], tmp_path: Path) -> None:
    out = report.build_sweep_report(store["uri"], "ema_momentum", None, tmp_path / "reports")
    assert out.parent == tmp_path / "reports" / "ema_momentum"
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 6 and set(trials["status"]) == {"FINISHED", "FAILED"}
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for value in ("0.99", "0.996"):
        assert f"| {value} |" in md
    assert "RuntimeError: CUDA out of memory in epoch 2" in md and "yes (RankMe flag)" in md
    assert "Git SHA `deadbeef`" in md and "host `testhost`" in md
    # Metrics vs the parameter, its seeds, learning curves and RankMe.
    assert page.count("data:image/png;base64,") == 4 and "<table>" in page
    plots = {f"ema_momentum_start_{kind}.png" for kind in ("metrics", "seeds", "learning")}
    assert plots <= {p.name for p in out.iterdir()}
    caption = f"probe_acc per seed across ema.momentum_start ({ONE_LINE_PER_SEED})"
    assert f"![{caption}](ema_momentum_start_seeds.png)" in md
    assert f"<figcaption>{caption}</figcaption>" in page
    # Last epoch: 0.99 at 80.0 and 80.2 (seed 2 failed), 0.996 at 85.0, 85.3 and 85.6; the means 80.1, 85.3.
    assert "the seeds span 0.40 points on average (highest − lowest seed at each of the 2 values" in md
    assert "the mean over seeds spans 5.20 points across the 2 values" in md
    # 0.996 leads by 5 points on every seed; 0.99 lost seed 2, so only seeds 0 and 1 inform the difference.
    assert "Best `ema.momentum_start` = 0.996" in md and "Best configuration `ema.momentum_start=0.996`" in md
    assert f"by {TUKEY}" in md and ": distinguishable from it; runner-up " in md
    assert "| 2 ⚠ | 0.99 | 2/3 |" in md
    logged = {a.path for a in store["client"].list_artifacts(store["parent"], "report")}
    assert "report/report.html" in logged and "report/trials.csv" in logged


def test_build_sweep_report__rebuild_gives_same_leaderboard(store: dict[str, Any], tmp_path: Path) -> None:
    first = report.build_sweep_report(store["uri"], "ema_momentum", store["parent"], tmp_path)
    second = report.build_sweep_report(store["uri"], "ema_momentum", store["parent"], tmp_path)
    assert first != second  # same second: a suffixed stamp, not an overwrite
    assert (first / "leaderboard.csv").read_text() == (second / "leaderboard.csv").read_text()

    def section(path: Path) -> str:
        md = (path / "report.md").read_text()
        return md[md.index("## Leaderboard") : md.index("## Parameter")]

    assert section(first) == section(second)


def test_fetch_histories__bulk_and_per_run_paths_agree(store: dict[str, Any]) -> None:
    runs, parent = report.fetch_runs(store["client"], "ema_momentum", None)
    children = runs[runs["run_id"] != parent]
    assert report.has_bulk_history(store["client"])
    keys = ["probe_acc", "rankme", "train_loss"]
    bulk = report.fetch_histories(store["client"], children, keys)
    per_run = report.fetch_histories(store["client"], children, keys, use_bulk=False)
    assert len(bulk) == 5 * EPOCHS * 3 + 3  # the failed trial logged one epoch, its loss NaN
    assert bulk["value"].isna().sum() == 1
    pd.testing.assert_frame_equal(rd.tidy_history(bulk), rd.tidy_history(per_run))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "nope"], "unknown experiment 'nope'"),
        (["--experiment", "ema_momentum", "--run-id", "0" * 32], "no run '" + "0" * 32),
    ],
)
def test_main__bad_input_one_line_exit_2(
    store: dict[str, Any], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert report.main([*args, "--tracking-uri", store["uri"]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_main__missing_sqlite_store_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert report.resolve_tracking_uri(None) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert report.main(["--experiment", "x"]) == 2
    assert "no MLflow database" in capsys.readouterr().err and not (tmp_path / "mlflow.db").exists()


def test_main__prints_report_path(
    store: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        report.main(["--experiment", "ema_momentum", "--out", str(tmp_path), "--tracking-uri", store["uri"]])
        == 0
    )
    printed = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed.parent == tmp_path / "ema_momentum" and (printed / "report.md").is_file()


@pytest.mark.slow
def test_build_sweep_report__over_a_real_rest_server(
    store: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from orchestrator.report.build_timing import start_mlflow_server

    proc, url = start_mlflow_server(store["uri"])
    try:
        client = MlflowClient(url)
        runs, parent = report.fetch_runs(client, "ema_momentum", store["parent"])
        children = runs[runs["run_id"] != parent]
        assert not report.has_bulk_history(client)
        keys = ["probe_acc", "train_loss"]
        expected = rd.tidy_history(report.fetch_histories(store["client"], children, keys, use_bulk=False))
        pd.testing.assert_frame_equal(
            rd.tidy_history(report.fetch_histories(client, children, keys)), expected
        )
        with monkeypatch.context() as patch:  # answers cut short at 4 points: halves, then single runs
            patch.setattr(report, "REST_POINTS", 4)
            halved = report.fetch_histories(client, children, keys)
            pd.testing.assert_frame_equal(rd.tidy_history(halved), expected)
        with monkeypatch.context() as patch:  # a server without the bulk endpoint: per-run calls
            patch.setattr(report, "REST_BULK", "/ajax-api/2.0/mlflow/metrics/no-such-endpoint")
            fallback = report.fetch_histories(client, children, keys)
            pd.testing.assert_frame_equal(rd.tidy_history(fallback), expected)
        out = report.build_sweep_report(url, "ema_momentum", None, tmp_path)
        assert len(pd.read_csv(out / "trials.csv")) == 6
    finally:
        proc.terminate()
        proc.wait(timeout=30)
