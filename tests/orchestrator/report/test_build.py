"""Tests of whole reports: from hand-built frames, then from a real MLflow sqlite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from orchestrator.report import build, frames, table_cells
from tests.orchestrator.report.conftest import (
    ONE_LINE_PER_SEED,
    TUKEY,
    TWELVE,
    ema_trials,
    make_runs,
    two_param_trials,
)


@pytest.mark.parametrize("ratios", [(0.2, 0.4, 0.6), TWELVE], ids=["9 configs", "12 configs"])
def test_build_report_from_frames__multi_param_sections(tmp_path: Path, ratios: tuple[float, ...]) -> None:
    trials = two_param_trials(ratios)
    columns = ["mask.ratio", "predictor.depth", "seed", "probe_acc"]
    runs = make_runs(
        [
            {"params": {"mask.ratio": r, "predictor.depth": d, "train.seed": s}, "seed": s,
             "metrics": {"probe_acc": a}}
            for r, d, s, a in trials[columns].itertuples(index=False)
        ],
        ["mask.ratio", "predictor.depth"],
    )  # fmt: skip
    out = build.build_report_from_frames(runs, None, tmp_path)
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
    out = build.build_report_from_frames(make_runs(trials_in, ["ema.momentum_start"]), history, tmp_path)
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
    assert "81.50 ± 19.06 †" in board and table_cells.TWO_SEED_NOTE in board
    assert "12.7 standard errors either side of the mean" in table_cells.TWO_SEED_NOTE
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
        frames.LEGACY_SPLIT_NOTE
        == "probe_acc/knn_acc measured on the test split (logged before validation splits)"
    )
    assert f"Splits: {frames.LEGACY_SPLIT_NOTE}" in md and "probe acc, test split (%)" in md
    assert "this ranking chooses on the test split" in md

    mixed = ema_trials({0.99: [0.70, 0.71, 0.72], 0.996: [0.80, 0.81, 0.83]})
    mixed[0]["metrics_version"] = None  # logged before the change, e.g. a resumed sweep
    mixed[0]["metrics"]["probe_acc"] = 0.99
    md = _report(tmp_path / "mixed", mixed)
    assert "1 completed trials have " + frames.LEGACY_SPLIT_NOTE in md
    assert "| 2 | 0.99 | 2/3 |" in md and "1 logged before validation splits" in md
    apart = _section(md, "## Trials logged before validation splits")
    assert "| r0 | ema.momentum_start=0.99 | 0 | 99.00 |" in apart


def test_build_sweep_report__files_and_content(store: dict[str, Any], tmp_path: Path) -> None:
    out = build.build_sweep_report(store["uri"], "ema_momentum", None, tmp_path / "reports")
    assert out.parent == tmp_path / "reports" / "ema_momentum"
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 6 and set(trials["status"]) == {"FINISHED", "FAILED"}
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for value in ("0.99", "0.996"):
        assert f"| {value} |" in md
    assert "RuntimeError: CUDA out of memory in epoch 2" in md and "yes (RankMe flag)" in md
    assert "Git SHA `deadbeef`" in md and "host `testhost`" in md
    assert "Profile: cpu (the Ray cluster has no GPU)" in md  # which sizing of the sweep ran, and why
    # Metrics vs the parameter, its seeds, learning curves and RankMe.
    assert page.count("data:image/png;base64,") == 4 and '<table class="dataframe">' in page
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
    first = build.build_sweep_report(store["uri"], "ema_momentum", store["parent"], tmp_path)
    second = build.build_sweep_report(store["uri"], "ema_momentum", store["parent"], tmp_path)
    assert first != second  # same second: a suffixed stamp, not an overwrite
    assert (first / "leaderboard.csv").read_text() == (second / "leaderboard.csv").read_text()

    def section(path: Path) -> str:
        md = (path / "report.md").read_text()
        return md[md.index("## Leaderboard") : md.index("## Parameter")]

    assert section(first) == section(second)
