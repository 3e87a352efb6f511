"""Which swept parameter matters most: fANOVA importances (Optuna's evaluator) with their bootstrap spread.

Each of :data:`IMPORTANCE_RESAMPLES` bootstrap resamples of the ranked trials is averaged per configuration
and decomposed by fANOVA (:func:`fanova_importance`), or by a main-effect variance split when Optuna fails
(:func:`main_effect_shares`); the report shows the mean and the 5-95% range over the resamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.report.display import format_value

MIN_IMPORTANCE_CONFIGS = 10  # fANOVA over fewer configurations fits noise
IMPORTANCE_RESAMPLES = 20
IMPORTANCE_TREES = 8  # per bootstrap fit (Optuna's default is 64): 20 fits cost about 2.5 full ones


@dataclass(frozen=True)
class Importance:
    """Parameter importances (each fit normalized to sum 1): the mean over bootstrap resamples of the
    trials, with the 5th and 95th percentiles of those resamples, and how they were obtained."""

    values: dict[str, float]
    method: str
    note: str | None = None
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    resamples: int = 0


def param_importance(
    trials: pd.DataFrame, params: list[str], metric: str, resamples: int = IMPORTANCE_RESAMPLES
) -> Importance:
    """fANOVA importances of the swept parameters for ``metric`` via Optuna, over ``resamples`` bootstrap
    resamples of the ranked trials, each averaged per configuration (mean and 5-95% range; see
    :func:`orchestrator.report.stats.bootstrap_importance`); a main-effect variance split if Optuna fails.
    Absent, with the reason, below :data:`MIN_IMPORTANCE_CONFIGS` distinct configurations."""
    if metric not in trials.columns:
        return Importance({}, "none", f"metric {metric} was not logged")
    done = trials[trials["ranked"] & np.isfinite(trials[metric])].reset_index(drop=True)
    configs = done["config_id"].nunique()
    if configs < MIN_IMPORTANCE_CONFIGS:
        return Importance(
            {}, "none", f"fewer than {MIN_IMPORTANCE_CONFIGS} configurations ({configs}): "
            "importance would not mean anything",
        )  # fmt: skip
    usable = [p for p in params if done[p].map(format_value).nunique() > 1]
    if not usable:
        return Importance({}, "none", "no swept parameter varies across the ranked trials")
    # Numbers stay numbers (ordered, fANOVA splits them); anything else becomes its display text, so mixed
    # values such as None and 3000 are one categorical.
    numeric = {
        p: pd.api.types.is_numeric_dtype(done[p]) and not pd.api.types.is_bool_dtype(done[p]) for p in usable
    }
    x = pd.DataFrame({p: done[p] if numeric[p] else done[p].map(format_value) for p in usable})
    fits, method, note = bootstrap_importance(x, done[metric], done["config_id"], resamples, IMPORTANCE_TREES)
    mean = fits.mean().sort_values(ascending=False)
    low, high = fits.quantile(0.05), fits.quantile(0.95)
    return Importance(
        {p: float(mean[p]) for p in mean.index}, method, note,
        {p: float(low[p]) for p in mean.index}, {p: float(high[p]) for p in mean.index}, len(fits),
    )  # fmt: skip


def fanova_importance(x: pd.DataFrame, y: Any, space: pd.DataFrame, n_trees: int = 64) -> dict[str, float]:
    """fANOVA importances (Optuna's evaluator, normalized to sum 1) of the columns of ``x`` for ``y``.

    Args:
        x: One column per parameter: ints, floats, or strings (categorical).
        y: The metric per row.
        space: Rows spanning the search space (the full data when ``x`` is a resample of it), so a resample
            that lost a value keeps the sweep's space.
        n_trees: Trees of the random forest fANOVA decomposes.
    """
    import optuna  # imported late: optuna is slow to import and only multi-parameter sweeps need it

    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in x.columns:
        values = space[p]
        if pd.api.types.is_integer_dtype(values):
            distributions[p] = optuna.distributions.IntDistribution(int(values.min()), int(values.max()))
        elif pd.api.types.is_float_dtype(values):
            distributions[p] = optuna.distributions.FloatDistribution(
                float(values.min()), float(values.max())
            )
        else:
            distributions[p] = optuna.distributions.CategoricalDistribution(sorted(set(map(str, values))))
    casts = {p: int if isinstance(d, optuna.distributions.IntDistribution) else
             float if isinstance(d, optuna.distributions.FloatDistribution) else str
             for p, d in distributions.items()}  # fmt: skip
    frozen = [
        optuna.trial.create_trial(
            value=float(row[-1]),
            params={p: casts[p](v) for p, v in zip(x.columns, row[:-1], strict=True)},
            distributions=distributions,
        )
        for row in zip(*(x[p] for p in x.columns), np.asarray(y, dtype=float), strict=True)
    ]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # create_study logs one INFO line per study
    try:
        study = optuna.create_study()
        study.add_trials(frozen)
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=n_trees, seed=0)
        result = optuna.importance.get_param_importances(study, evaluator=evaluator, params=list(x.columns))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {k: float(v) for k, v in result.items()}


def main_effect_shares(x: pd.DataFrame, y: Any) -> dict[str, float]:
    """Between-group variance of each column's marginal means of ``y``, normalized to sum 1."""
    y = pd.Series(np.asarray(y, dtype=float), index=x.index)
    total = float(((y - y.mean()) ** 2).sum())
    effects = {}
    for p in x.columns:
        g = y.groupby(x[p].astype(str))
        effects[p] = float((g.count() * (g.mean() - y.mean()) ** 2).sum()) / total if total > 0 else 0.0
    norm = sum(effects.values()) or 1.0
    return dict(sorted(((k, v / norm) for k, v in effects.items()), key=lambda kv: -kv[1]))


def bootstrap_importance(
    x: pd.DataFrame, y: Any, groups: Any, resamples: int = 20, n_trees: int = 8, seed: int = 0
) -> tuple[pd.DataFrame, str, str | None]:
    """Importances of the columns of ``x`` for ``y`` over ``resamples`` bootstrap resamples of the rows
    (trials): each resample is averaged per group (configuration) and the means are decomposed by fANOVA,
    or by the main-effect variance split if Optuna fails.

    Averaging first keeps each fit at one row per configuration (a forest over 1,000 trials costs ten
    times as much and only learns the seed noise it cannot explain), while drawing trials keeps the seed
    noise in the spread between resamples.

    Returns:
        (one row of importances per resample, method name, note saying why fANOVA was replaced or None).
    """
    rows = x.reset_index(drop=True).assign(_y=np.asarray(y, dtype=float), _g=np.asarray(groups, dtype=object))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        drawn = rows.iloc[rng.integers(0, len(rows), len(rows))]
        means = drawn.groupby("_g", sort=True).agg({**{p: "first" for p in x.columns}, "_y": "mean"})
        draws.append(means.reset_index(drop=True))
    try:
        fits = [fanova_importance(d[list(x.columns)], d["_y"], x, n_trees) for d in draws]
        method, note = "Optuna fANOVA", None
    except Exception as exc:  # report the failure and fall back rather than lose the whole report
        fits = [main_effect_shares(d[list(x.columns)], d["_y"]) for d in draws]
        method = "main-effect variance share"
        note = f"Optuna's fANOVA failed ({type(exc).__name__}: {exc}); showing a main-effect variance split"
    return pd.DataFrame(fits, columns=list(x.columns)).fillna(0.0), method, note
