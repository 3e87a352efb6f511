"""Tests of seed against setting: per-seed values across a parameter and the sentence that compares them."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestrator.report import frames, summary
from orchestrator.report.seeds import per_seed, seed_note
from tests.orchestrator.report.conftest import ONE_LINE_PER_SEED, ema_trials, make_runs

SEEDY = {0.99: [0.80, 0.90, 0.70], 0.996: [0.805, 0.905, 0.71]}  # seeds 20 points apart, settings 0.67


def _seedy(failed: tuple[int, ...] = (), stopped: tuple[int, ...] = ()) -> pd.DataFrame:
    trials_in = ema_trials(SEEDY)
    for i in failed:
        trials_in[i]["status"] = "FAILED"
    for i in stopped:
        trials_in[i]["stopped"] = True
    runs = make_runs(trials_in, ["ema.momentum_start"])
    return frames.trials_frame(runs, frames.sweep_info(runs))


def test_per_seed__one_row_per_seed_and_level_of_the_ranked_trials() -> None:
    trials = _seedy(failed=(2,), stopped=(5,))  # seed 2 failed at 0.99 and was stopped early at 0.996
    seeds = per_seed(trials, summary.param_levels(trials, "ema.momentum_start"), "probe_acc")
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
    trials = frames.trials_frame(runs, frames.sweep_info(runs))
    seeds = per_seed(trials, trials["mask.ratio"], "probe_acc")
    assert len(seeds) == 6 and set(seeds["n"]) == {3}
    for row in seeds.itertuples():  # the mean over depths 1, 2 and 3
        assert row.value == pytest.approx(0.5 + float(row.level) + 0.02 + 0.1 * row.seed)


def test_seed_note__seed_spread_beside_setting_spread_in_points() -> None:
    trials = _seedy()
    caption, sentence = seed_note(
        per_seed(trials, trials["ema.momentum_start"], "probe_acc"), "ema.momentum_start", "probe_acc"
    )
    assert caption == f"probe_acc per seed across ema.momentum_start ({ONE_LINE_PER_SEED})"
    # Seeds span 20 and 19.5 points at the two values: 19.75 on average; the means 80.00 and 80.67.
    assert sentence == (
        "Seed against setting on `probe_acc`: at one value of `ema.momentum_start` the seeds span 19.75 "
        "points on average (highest − lowest seed at each of the 2 values two or more seeds reached); the "
        "mean over seeds spans 0.67 points across the 2 values (highest − lowest)."
    )
    failed = _seedy(failed=(2,))  # 0.99 keeps seeds 0 and 1: 10 points apart, mean 85.00
    _, sentence = seed_note(
        per_seed(failed, failed["ema.momentum_start"], "probe_acc"), "ema.momentum_start", "probe_acc",
        ("mask.ratio",),
    )  # fmt: skip
    assert "the seeds (each a seed's mean over `mask.ratio`) span 14.75 points on average" in sentence
    assert "the mean over seeds spans 4.33 points across the 2 values" in sentence


def test_seed_note__absent_without_two_seeds_or_two_levels() -> None:
    trials = _seedy()
    for part in (trials[trials["seed"] == 0], trials[trials["ema.momentum_start"] == 0.99]):
        seeds = per_seed(part, part["ema.momentum_start"], "probe_acc")
        assert len(seeds) in (2, 3) and seed_note(seeds, "ema.momentum_start", "probe_acc") is None
