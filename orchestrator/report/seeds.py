"""Seed against setting: each seed's value of the metric at each level of a parameter, and the sentence
that sets how far a seed moves the metric beside how far the setting does (a mean ± CI hides the first)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.report.display import format_value, metric_spec


def per_seed(trials: pd.DataFrame, levels: pd.Series, metric: str) -> pd.DataFrame:
    """Per seed and level (``levels`` aligned with ``trials``, e.g. :func:`param_levels`): ``value``, the
    mean of ``metric`` over that seed's ranked trials at that level, and ``n``, their count (more than 1 when
    other swept parameters are pooled), sorted by seed. ``level`` is the :func:`format_value` label. Means
    over seeds hide how far one seed moves the metric; these rows show it. Trials without a seed are left
    out."""
    if metric not in trials.columns:
        return pd.DataFrame(columns=["seed", "level", "value", "n"])
    keep = trials["ranked"] & trials["seed"].notna() & np.isfinite(trials[metric].to_numpy(dtype=float))
    done = trials[keep]
    by = [done["seed"].astype(int), levels[keep].map(format_value).rename("level")]
    return done.groupby(by)[metric].agg(value="mean", n="count").reset_index()


def seed_note(
    seeds: pd.DataFrame, param: str, metric: str, pooled: tuple[str, ...] = ()
) -> tuple[str, str] | None:
    """The caption of a :func:`per_seed` frame's plot and the sentence that sets seed against setting, in
    the metric's display unit: the seeds' range (highest − lowest) at one level, averaged over the levels two
    or more seeds reached, beside the range of the per-level means over seeds (the plot's black line). None
    without two levels or without a level two seeds reached: nothing to set side by side."""
    by_level = seeds.groupby("level")["value"]
    spans = (by_level.max() - by_level.min())[by_level.count() >= 2]
    means = by_level.mean()
    if len(means) < 2 or spans.empty:
        return None
    spec = metric_spec(metric)
    unit = " points" if spec.unit == "%" else f" {spec.unit}" if spec.unit else ""
    others = ", ".join(f"`{p}`" for p in pooled)
    caption = f"{metric} per seed across {param} (one line per seed; black: mean over seeds"
    caption += f"; a point is the seed's mean over {', '.join(pooled)})" if pooled else ")"
    each = f" (each a seed's mean over {others})" if pooled else ""
    sentence = (
        f"Seed against setting on `{metric}`: at one value of `{param}` the seeds{each} span "
        f"{spans.mean() * spec.scale:,.{spec.decimals}f}{unit} on average (highest − lowest seed at each of "
        f"the {len(spans)} value{'s' if len(spans) != 1 else ''} two or more seeds reached); the mean over "
        f"seeds spans {(means.max() - means.min()) * spec.scale:,.{spec.decimals}f}{unit} across the "
        f"{len(means)} values (highest − lowest)."
    )
    return caption, sentence
