"""Which group is best, and is it really: the seed-blocked comparison with the best, stated in words.

:func:`blocked_comparison` runs :func:`orchestrator.report.stats.compare_with_best` (seed-blocked two-way
ANOVA with Tukey's studentized range) over the ranked trials of a trials frame, for the leaderboard's
configurations and for every parameter's levels alike; :func:`compare_best` turns its result into the report's
sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from orchestrator.report import stats as rs
from orchestrator.report.display import format_mean_ci, format_p, format_value, metric_spec

POWER, MAX_POWER_SEEDS = 0.8, 1000


@dataclass(frozen=True)
class Comparison:
    """The best group against every other on one metric, and the report's sentence about it."""

    result: rs.BestComparison
    sentence: str

    @property
    def best(self) -> str:
        return self.result.best

    @property
    def runner_up(self) -> str | None:
        return self.result.runner_up

    @property
    def distinguishable(self) -> bool:
        """The best is distinguishable from every other compared group."""
        others = self.result.others
        return bool(others) and len(self.result.distinguishable_from) == len(others)


def blocked_comparison(
    trials: pd.DataFrame, by: pd.Series, metric: str, goal: str, alpha: float = rs.ALPHA
) -> rs.BestComparison | None:
    """:func:`orchestrator.report.stats.compare_with_best` over the ranked trials: groups labelled by
    :func:`format_value` of ``by``, seeds as blocks. None when the metric is missing or < 2 groups have it."""
    if metric not in trials.columns:
        return None
    ranked = trials["ranked"].to_numpy(dtype=bool)
    groups = by[ranked].map(format_value)
    return rs.compare_with_best(trials.loc[ranked, metric], groups, trials.loc[ranked, "seed"], goal, alpha)


def _listing(labels: list[str], name: Any, limit: int = 8) -> str:
    shown = ", ".join(name(g) for g in labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def compare_best(
    trials: pd.DataFrame,
    by: pd.Series,
    metric: str,
    goal: str,
    what: str,
    names: dict[str, str] | None = None,
    alpha: float = rs.ALPHA,
    pooled: tuple[str, ...] = (),
    count: str = "seeds",
    power: bool = False,
) -> Comparison | None:
    """The best group of ``by`` against every other on ``metric`` (:func:`blocked_comparison`), in words.

    Args:
        trials: Tidy trials frame.
        by: Group label per trial (aligned with ``trials``), e.g. config ids or a parameter's levels.
        metric: Metric column; the best is the top seed-adjusted mean in the direction of ``goal``.
        goal: ``maximize`` or ``minimize``.
        what: How the groups are named in the sentence, e.g. ``"`mask.ratio` ="`` or ``"configuration"``.
        names: Display text per exact group label (see :func:`display_labels`).
        alpha: Familywise error rate (0.05: simultaneous 95% intervals).
        pooled: Other swept parameters, whose effects the model leaves in the residual (parameter tables).
        count: What a group's trials are called: ``seeds`` for configurations, ``trials`` for levels.
        power: When nothing is distinguishable from the best, add how many seeds per configuration would
            detect the observed best-minus-runner-up difference
            (:func:`orchestrator.report.stats.seeds_for_power`).

    Returns:
        None when fewer than two groups have a finite metric.
    """
    result = blocked_comparison(trials, by, metric, goal, alpha)
    if result is None:
        return None
    spec, shown = metric_spec(metric), names or {}

    def name(group: str) -> str:  # configuration names hold commas: quoted, so lists of them stay readable
        text = shown.get(group, group)
        return f"`{text}`" if count == "seeds" else text

    unit = "points" if spec.unit == "%" else spec.unit
    groups = by.map(format_value)
    total, failed = groups.value_counts(), groups[trials["outcome"] == "failed"].value_counts()

    def scaled(x: float, sign: str = "") -> str:
        return f"{x * spec.scale:{sign},.{spec.decimals}f}"

    def about(group: str) -> str:
        rows = trials["ranked"] & (groups == group)
        mean, half, n = rs.t_interval(trials.loc[rows, metric])
        text = f"{spec.name} {format_mean_ci(mean, half, spec, unit=True)}{' †' if n == 2 else ''}"
        text += f", {int(rows.sum())}/{total[group]} {count} complete"
        if failed.get(group, 0):
            text += f"; {failed[group]} failed, so its figures are over the survivors and may flatter it"
        return text

    others, best = result.others, result.best
    plural = "s" if len(others) != 1 else ""
    terms = f"{'configuration' if count == 'seeds' else 'level'}{' + seed' if result.blocked else ''}"
    model = f"`{metric} ~ {terms}` fitted by least squares"
    if pooled:
        model += "; " + ", ".join(f"`{p}`" for p in pooled) + " left in the residual"
    if result.reason is None:
        model += f"; residual sd {scaled(result.residual_sd)} {unit}, {result.df} degrees of freedom"
    text = (
        f"Best {what} {name(best)} ({about(best)}) against the {len(others)} other{plural} by "
        f"{result.test} ({model}): "
    )
    apart = [g for g in result.labels if not result.table.at[g, "compared"]]
    if result.reason is not None:
        text += f"no test: {result.reason}."
    else:
        row = result.table.loc[result.runner_up]
        runner = (
            f"runner-up {name(result.runner_up)} ({about(result.runner_up)}): "
            f"best − runner-up = {scaled(row['diff'], '+')} {unit}, simultaneous "
            f"{100 * (1 - alpha):g}% interval {scaled(row['ci_low'], '+')} to {scaled(row['ci_high'], '+')}, "
            f"adjusted p {'' if row['p_adjusted'] < 1e-9 else '= '}{format_p(row['p_adjusted'])}"
        )
        found = result.distinguishable_from
        if len(found) == len(others):
            text += (
                f"distinguishable from {'all ' + str(len(others)) if len(others) > 1 else 'it'}; {runner}."
            )
        elif found:
            rest = [g for g in others if g not in found]
            text += (
                f"distinguishable from {len(found)} of {len(others)} ({_listing(found, name)}), not from "
                f"{_listing(rest, name)}; {runner}."
            )
        else:
            many = f"any of the {len(others)}" if len(others) > 1 else "it"
            text += f"not distinguishable from {many}; {runner}."
            if power:
                text += " " + _power_sentence(row["diff"], result, scaled, unit)
    if apart:
        text += f" Not compared (no seed shared with the others): {_listing(apart, name)}."
    return Comparison(result, text)


def _power_sentence(diff: float, result: rs.BestComparison, scaled: Any, unit: str) -> str:
    seeds = rs.seeds_for_power(
        diff, result.residual_sd, result.k, result.alpha, POWER, MAX_POWER_SEEDS, result.blocked
    )
    df = "(k − 1)(n − 1)" if result.blocked else "k(n − 1)"
    needed = f"about {seeds}" if seeds is not None else f"more than {MAX_POWER_SEEDS}"
    return (
        f"At this residual sd, {needed} seeds per configuration would detect a best − runner-up difference "
        f"of {scaled(abs(diff))} {unit} with {100 * POWER:g}% power by the same test (a balanced sweep of "
        f"the same {result.k} configurations; normal approximation with the Tukey critical value at "
        f"{df} degrees of freedom)."
    )
