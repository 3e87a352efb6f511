"""Tests of the comparison with the best in words: which group is best, distinguishable or not, and why."""

from __future__ import annotations

import pytest
from scipy import stats

from orchestrator.report import comparison, frames
from tests.orchestrator.report.conftest import TUKEY, ema_trials, make_runs


def _compare(
    values: dict[float, list[float]],
    goal: str = "maximize",
    failed: tuple[int, ...] = (),
    power: bool = False,
) -> comparison.Comparison | None:
    trials_in = ema_trials(values)
    for i in failed:
        trials_in[i]["status"] = "FAILED"
    runs = make_runs(trials_in, ["ema.momentum_start"], goal=goal)
    trials = frames.trials_frame(runs, frames.sweep_info(runs))
    by, what = trials["ema.momentum_start"], "`ema.momentum_start` ="
    return comparison.compare_best(trials, by, "probe_acc", goal, what, power=power)


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
