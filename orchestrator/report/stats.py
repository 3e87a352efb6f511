"""Statistics of sweep reports: t intervals of means over seeds, and which configuration is best and whether
it really is.

A sweep runs every configuration on the same seeds, and a seed (initial weights, data order, masks) moves the
metric far more than the settings do. Configurations are therefore compared through the two-way additive model

    score[config, seed] = config effect + seed effect + noise,

fitted by least squares: the seed effects cancel out of every difference between configurations, and the
residual variance is what is left once both are accounted for. Every difference best-minus-other gets a
simultaneous interval from Tukey's studentized range, which accounts for the best having been picked out of k
from the same data (see :func:`compare_with_best`). :func:`t_interval` and :func:`t_half_width` are the
report's one t interval (every ``mean ± CI``). Nothing here knows about MLflow or report frames.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import interpolate, optimize, sparse, stats

ALPHA = 0.05
RANGE_NODES = 160  # spline nodes of the range distribution (agrees with scipy to ~1e-7, see the tests)
CHI_NODES = 400  # trapezoid nodes over log s of the residual-sd distribution
TAIL = 1e-9  # P(R > w) below this counts as 0 (scipy's range cdf is exact to ~1e-11 absolute)
TEST_NAME = f"seed-blocked two-way ANOVA, Tukey studentized range, simultaneous {100 * (1 - ALPHA):g}%"
COLUMNS = ("n", "mean", "adjusted_mean", "diff", "se", "ci_low", "ci_high", "p_adjusted", "distinguishable",
           "compared")  # fmt: skip


# --------------------------------------------------------------------------------------------- t intervals
def t_half_width(std: Any, n: Any, confidence: float = 0.95) -> np.ndarray:
    """Half-widths of t intervals of means from sample standard deviations and counts (NaN when n < 2)."""
    std, n = np.asarray(std, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = stats.t.ppf(0.5 + confidence / 2, np.clip(n - 1, 1, None))
        return np.where(n >= 2, quantile * std / np.sqrt(n), np.nan)


def t_interval(values: Any, confidence: float = 0.95) -> tuple[float, float, int]:
    """Mean, half-width of the t confidence interval of the mean, and n (NaN half-width when n < 2)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, 0
    std = x.std(ddof=1) if len(x) > 1 else math.nan
    return float(x.mean()), float(t_half_width(std, len(x), confidence)), len(x)


# ----------------------------------------------------------------------------------------- studentized range
# scipy.stats.studentized_range integrates each point by adaptive double quadrature: ~10 ms a p-value and
# ~0.3 s a quantile at k = 100, over a second for a 100-configuration leaderboard. The same integral,
# P(Q > q) = E_S[P(R > q S)] with R the range of k standard normals and S = sqrt(chi2_df / df), is done
# here with scipy's own infinite-df distribution for P(R > w) (a spline through 160 of its points per k) and
# a fixed trapezoid rule over log S, vectorized over q. tests/orchestrator/report/test_stats.py checks it
# against scipy.stats.studentized_range.
@functools.lru_cache(maxsize=64)
def _log_range_sf(k: int) -> tuple[float, interpolate.CubicSpline]:
    """(w_max, spline of log P(R > w) on [0, w_max]); beyond w_max, P(R > w) < :data:`TAIL` counts as 0."""
    w_max = 4.0
    while stats.studentized_range.sf(w_max, k, np.inf) > TAIL:
        w_max *= 1.25
    w = np.linspace(0.0, w_max, RANGE_NODES)
    sf = stats.studentized_range.sf(w, k, np.inf)
    # scipy's sf is 1 - cdf, exact to ~1e-11 absolute: nodes below TAIL are noise, whose log would make the
    # spline ring, so it ends at the last node above it.
    last = int(np.nonzero(sf > TAIL)[0][-1]) + 1
    return float(w[last - 1]), interpolate.CubicSpline(w[:last], np.log(sf[:last]))


@functools.lru_cache(maxsize=512)
def _chi_nodes(df: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes s and trapezoid weights of S = sqrt(chi2_df / df) over log s, between its 1e-15 quantiles."""
    dist = stats.chi(df, scale=1 / math.sqrt(df))
    t = np.linspace(math.log(dist.ppf(1e-15)), math.log(dist.isf(1e-15)), CHI_NODES)
    weights = dist.pdf(np.exp(t)) * np.exp(t) * (t[1] - t[0])  # density of log S
    weights[[0, -1]] *= 0.5
    return np.exp(t), weights


def studentized_range_sf(q: Any, k: int, df: int) -> np.ndarray:
    """P(Q > q) for Tukey's studentized range of ``k`` means with ``df`` residual degrees of freedom."""
    q = np.asarray(q, dtype=float)
    w_max, log_sf = _log_range_sf(int(k))
    s, weights = _chi_nodes(int(df))
    w = np.clip(q[..., None] * s, 0.0, w_max)
    tail = np.where(w >= w_max, 0.0, np.exp(log_sf(w)))
    return np.clip(tail @ weights, 0.0, 1.0)


@functools.lru_cache(maxsize=4096)
def studentized_range_isf(alpha: float, k: int, df: int) -> float:
    """The critical value q with P(Q > q) = ``alpha`` (the inverse of :func:`studentized_range_sf`)."""
    hi = 8.0
    while studentized_range_sf(hi, k, df) > alpha:  # heavy tails at 1-2 df: q(0.05; 2, 1) is 18
        hi *= 2.0
    return float(
        optimize.brentq(lambda q: float(studentized_range_sf(q, k, df)) - alpha, 0.0, hi, xtol=1e-10)
    )


# --------------------------------------------------------------------------------------------- the verdict
@dataclass(frozen=True)
class BestComparison:
    """The best group against every other, from the seed-blocked additive model.

    ``columns`` holds one array per :attr:`table` column, rows already in table order: best first, then the
    compared groups from best to worst seed-adjusted mean, then groups that share no seed with them.
    """

    labels: tuple[str, ...]  # group labels in table order
    columns: dict[str, np.ndarray]
    goal: str
    alpha: float
    residual_sd: float  # NaN when there is no residual variance to test with
    df: int  # residual degrees of freedom
    k: int  # groups in the studentized range (the compared ones)
    critical: float  # q(alpha; k, df) of the studentized range; NaN when untestable
    blocked: bool  # seeds were known and used as blocks
    reason: str | None  # why no interval could be computed, else None

    @property
    def best(self) -> str:
        return self.labels[0]

    @property
    def test(self) -> str:
        """The procedure's name, as the report prints it."""
        design = "seed-blocked two-way ANOVA" if self.blocked else "one-way ANOVA (no seeds logged)"
        return f"{design}, Tukey studentized range, simultaneous {100 * (1 - self.alpha):g}%"

    @property
    def others(self) -> list[str]:
        """The compared groups other than the best, from best to worst."""
        return [label for label, c in zip(self.labels[1:], self.columns["compared"][1:], strict=True) if c]

    @property
    def runner_up(self) -> str | None:
        return next(iter(self.others), None)

    @property
    def distinguishable_from(self) -> list[str]:
        """Groups whose simultaneous interval of best-minus-group excludes 0."""
        flags = self.columns["distinguishable"]
        return [label for label, flag in zip(self.labels, flags, strict=True) if flag is True]

    @property
    def table(self) -> pd.DataFrame:
        """One row per group (index: its label). ``n`` (finite values), ``mean`` (plain), ``adjusted_mean``
        (configuration effect plus the mean seed effect: the plain mean when every group has every seed),
        ``diff`` (best minus this group, adjusted means), ``se``, ``ci_low``, ``ci_high`` (its simultaneous
        interval), ``p_adjusted`` (Tukey-adjusted; under 1e-9 it reads 0, see :data:`TAIL`),
        ``distinguishable`` (the interval excludes 0; NA on the best row and where untestable) and
        ``compared``."""
        frame = pd.DataFrame(self.columns, index=pd.Index(self.labels, dtype=object))
        return frame.astype({"distinguishable": "boolean"})


def _component(groups: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Rows of the largest connected part of the groups x blocks design (most groups, then most rows):
    groups that share no seed, even through other groups, have no estimable difference."""
    k, b = groups.max() + 1, blocks.max() + 1
    if np.count_nonzero(np.bincount(groups * b + blocks, minlength=k * b)) == k * b:
        return np.ones(len(groups), dtype=bool)  # every group on every block: trivially connected
    edges = sparse.coo_matrix((np.ones(len(groups)), (groups, k + blocks)), shape=(k + b, k + b))
    count, label = sparse.csgraph.connected_components(edges, directed=False)
    if count == 1:  # every group and block code occurs in some row, so one part holds them all
        return np.ones(len(groups), dtype=bool)
    row_part = label[groups]
    group_part = label[:k]
    parts = np.unique(row_part)
    size = [(np.count_nonzero(group_part == q), np.count_nonzero(row_part == q)) for q in parts]
    return row_part == parts[max(range(len(parts)), key=size.__getitem__)]


def _fit_additive(
    y: np.ndarray, groups: np.ndarray, blocks: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Least-squares fit of ``y ~ group + block`` on a connected design.

    The normal equations are assembled from the cell counts ((k + b - 1) square, no n x p design matrix) and
    solved directly: on a connected design they have full rank, and numpy's ``lstsq`` on the dense design
    took 0.2-0.8 s at 100 configurations once BLAS threads contend for two cores.

    Returns:
        Seed-adjusted group means (k,), their covariance divided by the residual variance (k, k), the residual
        sum of squares and the residual degrees of freedom.
    """
    k, b = groups.max() + 1, blocks.max() + 1
    # Parameters: one effect per group, one per block but the first (absorbed into the group effects).
    counts = np.bincount(groups * b + blocks, minlength=k * b).reshape(k, b).astype(float)
    gram = np.block(
        [[np.diag(counts.sum(axis=1)), counts[:, 1:]], [counts[:, 1:].T, np.diag(counts.sum(axis=0)[1:])]]
    )
    rhs = np.concatenate(
        [np.bincount(groups, weights=y, minlength=k), np.bincount(blocks, weights=y, minlength=b)[1:]]
    )
    inverse = np.linalg.inv(gram)
    coef = inverse @ rhs
    block_effect = np.concatenate([[0.0], coef[k:]])
    rss = float(((y - coef[groups] - block_effect[blocks]) ** 2).sum())
    # Adjusted mean = group effect + the average block effect: L @ coef.
    lmap = np.hstack([np.eye(k), np.full((k, b - 1), 1.0 / b)])
    return lmap @ coef, lmap @ inverse @ lmap.T, rss, len(y) - (k + b - 1)


def compare_with_best(
    values: Any, groups: Any, blocks: Any, goal: str = "maximize", alpha: float = ALPHA
) -> BestComparison | None:
    """Best group against every other by Tukey's studentized range on the seed-blocked additive model.

    The model ``score ~ group + seed`` is fitted by least squares (:func:`_fit_additive`); the groups are
    ranked by their seed-adjusted means, and the best is the top one. For each other group j, the difference
    d_j = best - j gets the simultaneous interval d_j ± q(alpha; k, df) / sqrt(2) * SE_j, with SE_j the
    standard error of that fitted contrast (residual sd times the root of its variance factor from the
    model) and q the studentized range of the k compared groups at the residual's df. In a balanced design
    (every group on every seed, equal counts) this is Tukey's HSD for a randomized block design, and the
    adjusted means are the plain means. With missing cells (failed seeds) each difference keeps its own
    SE_j from the fitted contrast: the Tukey-Kramer rule, as emmeans or SAS ``LSMEANS / ADJUST=TUKEY``
    apply it to unbalanced designs; it is exact for balanced data, and an approximation otherwise (proven
    conservative for one-way designs, Hayter 1984).

    Why picking the best from the same data is covered: Tukey's range bounds all k(k-1)/2 pairwise
    differences at once, P(every pairwise interval covers its true difference) = 1 - alpha. That event does
    not depend on which group is called best, so whatever group the data select (here the top mean), its
    k - 1 intervals against the others are among the covered ones and hold simultaneously at 1 - alpha. A
    comparison with the best as a fixed control (Dunnett) or pairwise t-tests would not: they assume the
    reference was chosen before seeing the data. Trials are noise around the additive model with one
    variance, independent given their seed: the assumptions of the ANOVA.

    Args:
        values: The metric per trial.
        groups: Group label per trial (configuration id, or a parameter's level).
        blocks: Seed per trial (None/NaN when unknown). When no seed is known, all trials form one block
            (one-way ANOVA); otherwise trials without a seed are left out (they cannot be paired).
        goal: ``maximize`` or ``minimize``: the direction in which the best is the top mean.
        alpha: Familywise error rate of the intervals (0.05: simultaneous 95%).

    Returns:
        None when fewer than two groups have a finite value.
    """
    y = np.asarray(values, dtype=float)
    labels = np.array([str(v) for v in groups], dtype=object)
    seeds = pd.isna(np.asarray(blocks, dtype=object))
    blocked = not seeds.all()
    keep = np.isfinite(y) & ~seeds if blocked else np.isfinite(y)
    # Plain numpy from here: the 1,000-sweep simulation in the tests calls this once per sweep.
    g_names, g_codes = np.unique(labels[keep], return_inverse=True)
    if len(g_names) < 2:
        return None
    y = y[keep]
    if blocked:
        b_codes = np.unique(np.asarray(blocks, dtype=object)[keep].astype(str), return_inverse=True)[1]
    else:
        b_codes = np.zeros(len(y), dtype=np.int64)
    size = len(g_names)
    n = np.bincount(g_codes, minlength=size)
    mean = np.bincount(g_codes, weights=y, minlength=size) / n
    sign = 1.0 if goal != "minimize" else -1.0

    part = _component(g_codes, b_codes)
    inside = np.unique(g_codes[part])
    adjusted, cov = np.full(size, np.nan), np.full((size, size), np.nan)
    rss, df = math.nan, 0
    if len(inside) >= 2:
        sub_b = np.unique(b_codes[part], return_inverse=True)[1]
        fitted, sub_cov, rss, df = _fit_additive(y[part], np.searchsorted(inside, g_codes[part]), sub_b)
        adjusted[inside] = fitted
        cov[np.ix_(inside, inside)] = sub_cov
    else:  # no two groups share a seed: rank by plain means, compare nothing
        adjusted[inside] = mean[inside]
    best = int(inside[np.argmax(sign * adjusted[inside])])

    residual_sd = math.sqrt(rss / df) if df > 0 else math.nan
    reason = None
    if len(inside) < 2:
        reason = "no two configurations share a seed, so no difference is estimable"
    elif df <= 0:
        reason = "no residual degrees of freedom (too few seeds per configuration for a test)"
    elif not residual_sd > 1e-12 * max(float(np.abs(y).max()), 1.0):
        reason = "no residual variance (the seed-blocked model fits exactly), so the test is undefined"
        residual_sd = math.nan
    k, compared = len(inside), np.isin(np.arange(size), inside)
    others = compared & (np.arange(size) != best)
    diff = np.where(others, adjusted[best] - adjusted, np.nan)
    with np.errstate(invalid="ignore"):
        se = residual_sd * np.sqrt(np.clip(cov[best, best] + np.diag(cov) - 2 * cov[best], 0.0, None))
    se[~others] = np.nan
    critical, p = math.nan, np.full(size, np.nan)
    if reason is None:
        critical = studentized_range_isf(alpha, k, df)
        p[others] = studentized_range_sf(np.abs(diff[others]) / se[others] * math.sqrt(2.0), k, df)
    half = critical / math.sqrt(2.0) * se
    # True/False where there is an interval, None on the best row and where untestable.
    distinguishable = np.array(
        [None if np.isnan(h) else bool(abs(d) > h) for d, h in zip(diff, half, strict=True)], dtype=object
    )
    # Best first, then the compared groups from best to worst, then those not compared by plain mean.
    order = np.lexsort((-sign * np.where(compared, adjusted, mean), ~compared, np.arange(size) != best))
    columns = {
        "n": n, "mean": mean, "adjusted_mean": np.where(compared, adjusted, np.nan), "diff": diff, "se": se,
        "ci_low": diff - half, "ci_high": diff + half, "p_adjusted": p,
        "distinguishable": distinguishable,
        "compared": compared,
    }  # fmt: skip
    return BestComparison(
        labels=tuple(str(v) for v in g_names[order]),
        columns={name: values[order] for name, values in columns.items()},
        goal=goal,
        alpha=alpha,
        residual_sd=residual_sd,
        df=df,
        k=k,
        critical=critical,
        blocked=blocked,
        reason=reason,
    )


def seeds_for_power(
    diff: float,
    residual_sd: float,
    k: int,
    alpha: float = ALPHA,
    power: float = 0.8,
    max_seeds: int = 1000,
    blocked: bool = True,
) -> int | None:
    """Seeds per configuration at which the same test would detect a true best-minus-other ``diff`` with
    probability ``power``, in a balanced sweep of ``k`` configurations whose residual sd is ``residual_sd``.

    Normal approximation with the Tukey critical value: the difference of two means over n seeds has
    SE = sd * sqrt(2 / n), the test declares it when |d| / SE > q(alpha; k, df) / sqrt(2) with
    df = (k - 1)(n - 1) (seed-blocked; k(n - 1) without blocks), so power(n) ~ Phi(|diff| / SE - q / sqrt(2))
    (the far tail and the spread of the estimated sd ignored).

    Returns:
        The smallest n >= 2 reaching ``power``; None when even ``max_seeds`` do not (or ``diff`` is 0).
    """
    if not (np.isfinite(diff) and np.isfinite(residual_sd) and residual_sd > 0 and diff != 0 and k >= 2):
        return None

    def achieved(n: int) -> float:
        critical = studentized_range_isf(alpha, k, (k - 1 if blocked else k) * (n - 1))
        z = abs(diff) / (residual_sd * math.sqrt(2.0 / n)) - critical / math.sqrt(2.0)
        return float(stats.norm.cdf(z))

    if achieved(max_seeds) < power:
        return None
    lo, hi = 1, 2  # power grows with n: double up to a bracket, then bisect
    while achieved(hi) < power:
        lo, hi = hi, min(2 * hi, max_seeds)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if achieved(mid) < power else (lo, mid)
    return hi
