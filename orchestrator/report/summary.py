"""Mean ± 95% CI tables over seeds: one row per value of a swept parameter, and the leaderboard.

Every figure is over the ranked trials of :func:`orchestrator.report.frames.trials_frame` (those that ran to
their last epoch), with the t interval of :func:`orchestrator.report.stats.t_half_width`. The leaderboard's
ranking and its comparison columns are :func:`orchestrator.report.comparison.blocked_comparison`'s, the same
comparison the report's sentences state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from orchestrator.report import stats as rs
from orchestrator.report.comparison import blocked_comparison
from orchestrator.report.display import format_value, level_sort_key

if TYPE_CHECKING:
    from orchestrator.report.frames import SweepInfo


def param_levels(trials: pd.DataFrame, param: str, max_levels: int = 12) -> pd.Series:
    """The levels a parameter's table rows are: its values, or quantile bins when a random or Optuna
    sweep drew more than ``max_levels`` distinct numbers (a row per draw would be one trial each)."""
    values = trials[param]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric or values.nunique() <= max_levels:
        return values.astype(object)
    bins = pd.qcut(values, q=min(8, max_levels), duplicates="drop")
    return bins.astype(object)


def summarize(trials: pd.DataFrame, by: str, metrics: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``by``: n and, per metric, ``<m>_mean`` and ``<m>_ci`` over the ranked trials."""
    done = trials[trials["ranked"]]
    metrics = [m for m in metrics if m in done.columns]
    # Group on the displayed label so None/NaN and mixed-type values form one group each.
    groups = done.groupby(done[by].map(format_value), sort=False)
    first_rows = {label: done[by].iloc[idx[0]] for label, idx in groups.indices.items()}
    out = pd.DataFrame({by: pd.Series(first_rows, dtype=object), "n": groups.size()})
    for m in metrics:
        out[f"{m}_mean"] = groups[m].mean()
        out[f"{m}_ci"] = rs.t_half_width(groups[m].std(ddof=1), groups[m].count(), confidence)
    out = out.reset_index(drop=True)
    order = sorted(range(len(out)), key=lambda i: level_sort_key(out[by].iloc[i]))
    return out.iloc[order].reset_index(drop=True)


def parameter_table(
    trials: pd.DataFrame, param: str, metrics: list[str], max_levels: int = 12
) -> pd.DataFrame:
    """Every value (or bin) of one swept parameter with mean and CI of each metric over its trials."""
    leveled = trials.assign(**{param: param_levels(trials, param, max_levels)})
    return summarize(leveled, param, metrics)


def leaderboard(
    trials: pd.DataFrame, info: SweepInfo, metrics: list[str], alpha: float = rs.ALPHA
) -> pd.DataFrame:
    """Configurations (swept values, seeds pooled) ranked by the sweep's metric over the ranked trials.

    Columns: ``rank``, ``config_id``, the swept params, ``n`` (ranked trials), ``<m>_mean`` and ``<m>_ci``
    (t interval over seeds) per metric, ``trials`` (all), ``failed``, ``stopped_early``, ``legacy_apart``
    (completed on the legacy test split while the ranking is on validation), ``collapsed``,
    ``seeds`` (``n/trials``, e.g. ``2/3``), ``ci_from_2_seeds``, then the comparison with the best
    (:func:`blocked_comparison`): ``<metric>_seed_adjusted`` (the ranking key: the plain mean when every
    configuration has every seed), ``diff_vs_best`` (best minus this configuration), ``diff_ci_low``,
    ``diff_ci_high`` (simultaneous interval), ``p_vs_best_adjusted`` and ``distinguishable_from_best``, all
    empty on the best row. Configurations without a ranked trial come last.
    """
    table = summarize(trials, "config_id", metrics)
    firsts = trials.drop_duplicates("config_id").set_index("config_id")
    flags = trials.assign(
        failed=trials["outcome"] == "failed", stopped=trials["outcome"] == "stopped early",
        apart=(trials["outcome"] == "completed") & ~trials["ranked"],
    )  # fmt: skip
    counts = flags.groupby("config_id").agg(
        trials=("run_id", "size"), failed=("failed", "sum"), stopped_early=("stopped", "sum"),
        legacy_apart=("apart", "sum"), collapsed=("collapsed", "sum"),
    )  # fmt: skip
    missing = [c for c in counts.index if c not in set(table["config_id"])]
    table = pd.concat([table, pd.DataFrame({"config_id": missing, "n": 0})], ignore_index=True)
    for key in info.swept_params:
        table.insert(table.columns.get_loc("n"), key, [firsts.at[c, key] for c in table["config_id"]])
    for column in counts.columns:
        table[column] = counts.loc[table["config_id"], column].to_numpy().astype(int)
    table["seeds"] = [f"{n}/{t}" for n, t in zip(table["n"], table["trials"], strict=True)]
    table["ci_from_2_seeds"] = table["n"] == 2
    result = blocked_comparison(trials, trials["config_id"], info.metric, info.goal, alpha)
    ids = table["config_id"].map(format_value)
    found = result.table if result is not None else pd.DataFrame(columns=rs.COLUMNS)
    for column, source in (
        (f"{info.metric}_seed_adjusted", "adjusted_mean"), ("diff_vs_best", "diff"),
        ("diff_ci_low", "ci_low"), ("diff_ci_high", "ci_high"), ("p_vs_best_adjusted", "p_adjusted"),
        ("distinguishable_from_best", "distinguishable"),
    ):  # fmt: skip
        table[column] = ids.map(found[source]).to_numpy()
    if result is not None:
        position = ids.map({label: i for i, label in enumerate(result.labels)})
    else:  # no comparison (one configuration, or the metric not logged): plain means decide
        sort_col = f"{info.metric}_mean"
        sign = 1 if info.goal == "minimize" else -1
        position = sign * table[sort_col] if sort_col in table.columns else pd.Series(0, index=table.index)
    table = table.iloc[np.argsort(position.to_numpy(dtype=float), kind="stable")]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)
