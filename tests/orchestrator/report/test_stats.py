"""Tests of the report's statistics: the studentized range against scipy, the seed-blocked Tukey comparison
against hand computations, and simulations of sweeps shaped like real ones (a seed moves the metric 10x more
than the noise) that measure its error rates."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from orchestrator.report import stats as rs

SEED_SD, NOISE_SD = 10.0, 1.0  # seed offsets shared by every configuration on that seed, 10x the noise


def blocked_sweep(
    rng: np.random.Generator, effects: list[float], seeds: int = 3
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(score, configuration, seed) per trial: effect of the configuration + offset of the seed + noise."""
    k = len(effects)
    config, seed = np.repeat(np.arange(k), seeds), np.tile(np.arange(seeds), k)
    score = (
        np.asarray(effects)[config] + rng.normal(0, SEED_SD, seeds)[seed] + rng.normal(0, NOISE_SD, k * seeds)
    )
    return score, [f"c{i}" for i in config], seed


# ----------------------------------------------------------------------------------------- studentized range
@pytest.mark.parametrize(("k", "df"), [(2, 1), (3, 2), (6, 10), (20, 57), (100, 198)])
def test_studentized_range_sf__matches_scipy(k: int, df: int) -> None:
    q = np.array([rs.studentized_range_isf(p, k, df) for p in (0.9, 0.05, 1e-3)])
    expected = stats.studentized_range.sf(q, k, df)
    np.testing.assert_allclose(rs.studentized_range_sf(q, k, df), expected, rtol=1e-5)
    np.testing.assert_allclose(rs.studentized_range_sf(q, k, df), [0.9, 0.05, 1e-3], rtol=1e-8)


@pytest.mark.parametrize(("k", "df"), [(3, 5), (6, 10)])
def test_studentized_range_isf__matches_scipy(k: int, df: int) -> None:
    assert rs.studentized_range_isf(0.05, k, df) == pytest.approx(
        stats.studentized_range.ppf(0.95, k, df), rel=1e-7
    )


# --------------------------------------------------------------------------------------------- the comparison
def test_compare_with_best__balanced_is_tukey_hsd_on_the_blocked_design() -> None:
    score, config, seed = blocked_sweep(np.random.default_rng(1), [0.0, 0.5, 1.0, 3.0], seeds=4)
    result = rs.compare_with_best(score, config, seed)
    assert result is not None and result.best == "c3" and result.test.startswith("seed-blocked two-way ANOVA")
    # The two-way ANOVA by hand: residual = y - configuration mean - seed mean + grand mean.
    grid = pd.DataFrame({"y": score, "c": config, "s": seed}).pivot(index="c", columns="s", values="y")
    residual = (
        grid.to_numpy()
        - grid.mean(axis=1).to_numpy()[:, None]
        - grid.mean(axis=0).to_numpy()
        + grid.stack().mean()
    )
    df = (4 - 1) * (4 - 1)
    assert result.df == df and result.residual_sd == pytest.approx(math.sqrt((residual**2).sum() / df))
    table = result.table
    means = grid.mean(axis=1)
    se = result.residual_sd * math.sqrt(2 / 4)
    for other in ("c0", "c1", "c2"):
        diff = means["c3"] - means[other]
        assert table.at[other, "diff"] == pytest.approx(diff) and table.at[other, "se"] == pytest.approx(se)
        q = stats.studentized_range.ppf(0.95, 4, df)
        assert table.at[other, "ci_low"] == pytest.approx(diff - q / math.sqrt(2) * se, rel=1e-6)
        expected_p = stats.studentized_range.sf(abs(diff) / se * math.sqrt(2), 4, df)
        assert table.at[other, "p_adjusted"] == pytest.approx(expected_p, rel=1e-4, abs=1e-9)
    assert table.index[0] == "c3" and table.iloc[0][["diff", "ci_low", "p_adjusted"]].isna().all()
    assert pd.isna(table.at["c3", "distinguishable"])


def test_compare_with_best__two_groups_is_the_paired_t_test() -> None:
    a, b = [0.62, 0.715, 0.83, 0.7], [0.60, 0.70, 0.80, 0.71]
    result = rs.compare_with_best(a + b, ["a"] * 4 + ["b"] * 4, [0, 1, 2, 3] * 2)
    assert result is not None and result.table.at["b", "p_adjusted"] == pytest.approx(
        stats.ttest_rel(a, b).pvalue, rel=1e-5
    )


def test_compare_with_best__one_way_without_seeds_matches_scipy_tukey_hsd() -> None:
    rng = np.random.default_rng(2)
    samples = [rng.normal(mu, 1.0, n) for mu, n in ((2.0, 4), (0.0, 3), (0.5, 5))]  # unbalanced, no seeds
    labels = [name for name, x in zip("abc", samples, strict=True) for _ in x]
    result = rs.compare_with_best(np.concatenate(samples), labels, [None] * len(labels))
    assert result is not None and result.best == "a" and not result.blocked
    expected = stats.tukey_hsd(*samples)  # one-way Tukey-Kramer: the oracle for the unblocked case
    for j, name in ((1, "b"), (2, "c")):
        assert result.table.at[name, "p_adjusted"] == pytest.approx(expected.pvalue[0, j], rel=1e-4)
        interval = expected.confidence_interval(0.95)
        assert result.table.at[name, "ci_low"] == pytest.approx(interval.low[0, j], rel=1e-5)


def test_compare_with_best__seed_offsets_cancel() -> None:
    score, config, seed = blocked_sweep(np.random.default_rng(3), [0.0, 0.0, 2.0])
    shifted = score + np.where(seed == 1, 1000.0, 0.0)  # a seed that is far better for everyone
    plain, moved = rs.compare_with_best(score, config, seed), rs.compare_with_best(shifted, config, seed)
    assert plain is not None and moved is not None
    for column in ("diff", "se", "p_adjusted"):
        np.testing.assert_allclose(moved.table[column], plain.table[column], rtol=1e-7)


def test_compare_with_best__missing_cell_is_adjusted_for_its_seed() -> None:
    """c0 lost its seed-0 trial, and seed 0 is the lucky one: its plain mean falls by the seed's offset, its
    seed-adjusted mean does not, and the difference keeps a Tukey-Kramer standard error larger than a full
    configuration's."""
    offsets, effects = np.array([5.0, 0.0, -1.0]), {"c0": 1.0, "c1": 0.5, "c2": 0.0}
    rng = np.random.default_rng(4)
    rows = [(c, s, e + offsets[s] + rng.normal(0, 0.01)) for c, e in effects.items() for s in range(3)]
    rows = [r for r in rows if (r[0], r[1]) != ("c0", 0)]
    result = rs.compare_with_best([r[2] for r in rows], [r[0] for r in rows], [r[1] for r in rows])
    assert result is not None and result.best == "c0"
    table = result.table
    assert table.at["c0", "mean"] == pytest.approx(1.0 - 0.5, abs=0.05)  # seeds 1 and 2 only
    assert table.at["c0", "adjusted_mean"] - table.at["c1", "adjusted_mean"] == pytest.approx(0.5, abs=0.05)
    # Two seeds instead of three: a wider standard error than the balanced sd * sqrt(2 / 3).
    assert table.at["c1", "se"] > result.residual_sd * math.sqrt(2 / 3)
    assert result.distinguishable_from == ["c1", "c2"]


def test_compare_with_best__groups_without_a_shared_seed_are_not_compared() -> None:
    result = rs.compare_with_best([1.0, 1.1, 2.0, 2.2, 9.0], ["a", "a", "b", "b", "island"], [0, 1, 0, 1, 7])
    assert result is not None and result.best == "b" and result.others == ["a"]
    assert not result.table.at["island", "compared"] and np.isnan(result.table.at["island", "diff"])
    assert result.labels[-1] == "island"


def test_compare_with_best__no_residual_variance_says_so() -> None:
    result = rs.compare_with_best([1.0, 2.0, 1.5, 2.5], ["a", "a", "b", "b"], [0, 1, 0, 1])
    assert result is not None and result.reason is not None and "no residual variance" in result.reason
    assert result.distinguishable_from == [] and result.table["p_adjusted"].isna().all()


def test_compare_with_best__fast_at_100_configurations() -> None:
    score, config, seed = blocked_sweep(np.random.default_rng(5), list(np.linspace(0, 3, 100)), seeds=4)
    rs.studentized_range_isf.cache_clear()
    rs._log_range_sf.cache_clear()
    start = time.perf_counter()
    result = rs.compare_with_best(score, config, seed)
    elapsed = time.perf_counter() - start
    assert result is not None and len(result.others) == 99 and result.table["p_adjusted"].notna().sum() == 99
    assert elapsed < 0.5, f"{elapsed:.2f} s"


# --------------------------------------------------------------------------------------------- simulations
SWEEPS = 1000


def test_simulation__null_sweeps_rarely_declare_a_difference() -> None:
    """6 equal configurations x 3 shared seeds: how often is any configuration declared distinguishable from
    the best? The best is picked from the same data, so this is the familywise error of the selection too."""
    rng = np.random.default_rng(20261127)
    declared = sum(
        bool(rs.compare_with_best(*blocked_sweep(rng, [0.0] * 6)).distinguishable_from) for _ in range(SWEEPS)
    )
    assert declared / SWEEPS <= 0.065


def test_simulation__planted_best_is_found() -> None:
    """One configuration 5 noise sds above five equal others: picked as best and told apart from all five."""
    rng = np.random.default_rng(20261128)
    found = 0
    for _ in range(SWEEPS):
        result = rs.compare_with_best(*blocked_sweep(rng, [5.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
        found += result.best == "c0" and len(result.distinguishable_from) == 5
    assert found / SWEEPS >= 0.90


def test_seeds_for_power__reaches_its_power_in_simulation() -> None:
    """The seeds it asks for detect a best-minus-runner-up gap of 1 noise sd about 80% of the time (the normal
    approximation ignores the far tail and the spread of the estimated sd)."""
    seeds = rs.seeds_for_power(1.0, NOISE_SD, k=6)
    assert seeds is not None and 20 <= seeds <= 40
    assert rs.seeds_for_power(1.0, NOISE_SD, k=6, power=0.5) < seeds < rs.seeds_for_power(0.5, NOISE_SD, k=6)
    rng = np.random.default_rng(7)
    hits = sum(
        "c1"
        in rs.compare_with_best(
            *blocked_sweep(rng, [1.0, 0.0, -9.0, -9.0, -9.0, -9.0], seeds)
        ).distinguishable_from
        for _ in range(300)
    )
    assert 0.72 <= hits / 300 <= 0.88


def test_seeds_for_power__none_without_a_difference() -> None:
    assert rs.seeds_for_power(0.0, 1.0, 6) is None and rs.seeds_for_power(1e-6, 1.0, 6) is None
    assert rs.seeds_for_power(0.3, math.nan, 6) is None


def test_t_half_width__nan_below_two() -> None:
    half = rs.t_half_width([1.0, 1.0, 1.0], [1, 2, 3])
    assert np.isnan(half[0]) and half[1] == pytest.approx(stats.t.ppf(0.975, 1) / math.sqrt(2))


def test_t_interval__single_value_has_no_interval() -> None:
    assert rs.t_interval([0.5]) == (0.5, pytest.approx(float("nan"), nan_ok=True), 1)
    assert rs.t_interval([np.nan, 0.5, 0.7])[2] == 2
