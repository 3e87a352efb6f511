"""The report's content: a sweep's frames turned into a :class:`~orchestrator.report.document.Doc`, section
by section (header, leaderboard, one section per swept parameter, trials stopped early, legacy trials,
failures), with the plots written next to it on the way.

Nothing here reads MLflow: :func:`compose_report` takes the tidy frames of :mod:`orchestrator.report.frames`
(:mod:`orchestrator.report.build` fetches them and writes the files).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from orchestrator.report import plots as rp
from orchestrator.report.comparison import compare_best
from orchestrator.report.display import (
    display_labels,
    format_mean_ci,
    format_p,
    format_seconds,
    format_value,
    metric_spec,
)
from orchestrator.report.document import Doc
from orchestrator.report.frames import (
    LEGACY_SPLIT_NOTE,
    SweepInfo,
    epochs_reached,
    learning_curves,
    ranks_test_split,
)
from orchestrator.report.importance import param_importance
from orchestrator.report.seeds import per_seed, seed_note
from orchestrator.report.stats import TEST_NAME, t_interval
from orchestrator.report.summary import leaderboard, param_levels, parameter_table
from orchestrator.report.table_cells import (
    TWO_SEED_NOTE,
    diff_vs_best_cells,
    leaderboard_notes,
    marks_two_seeds,
    metric_columns,
    summary_cells,
)
from orchestrator.tracking.history import HISTORY_KEYS

LEADERBOARD_ROWS = 50  # the markdown shows the top rows; leaderboard.csv has them all


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class _Composer:
    """Builds the report's :class:`Doc` section by section, writing plots into ``out`` on the way."""

    def __init__(
        self,
        info: SweepInfo,
        trials: pd.DataFrame,
        history: pd.DataFrame,
        out: Path,
        rankme_line: tuple[float, str] | None,
    ) -> None:
        self.info, self.trials, self.history = info, trials, history
        self.out, self.rankme_line = out, rankme_line
        self.metrics = metric_columns(info.metric, trials)
        self.test_split = ranks_test_split(trials)
        # An old sweep's probe_acc/knn_acc were scored on the test split: every header says so.
        self.labels = {
            m: f"{metric_spec(m).name}, test split ({metric_spec(m).unit})"
            for m in ("probe_acc", "knn_acc")
            if self.test_split
        }
        self.doc = Doc()

    def header(self) -> None:
        info, trials = self.info, self.trials
        outcomes = trials["outcome"].value_counts()
        completed, stopped = int(outcomes.get("completed", 0)), int(outcomes.get("stopped early", 0))
        failed = int(outcomes.get("failed", 0))
        durations = trials["duration_s"].to_numpy(dtype=float)
        durations = durations[np.isfinite(durations)]
        span = (trials["end_time"].max() - trials["start_time"].min()).total_seconds()
        mean, half, _ = t_interval(durations)
        median = format_seconds(float(np.median(durations))) if len(durations) else "–"
        started = f"{info.start_time:%Y-%m-%d %H:%M UTC}" if info.start_time is not None else "unknown"
        devices = ", ".join(
            f"`{d}` ×{n}" for d, n in trials["device"].fillna("unknown").value_counts().items()
        )
        seeds = ", ".join(str(s) for s in sorted(trials["seed"].dropna().unique())) or "unknown"
        swept = ", ".join(f"`{p}`" for p in info.swept_params) or "nothing (seeds only)"
        self.doc.heading(1, f"Sweep report: {info.name}")
        self.doc.bullets([
            f"Sweep `{info.name}`, parent run `{info.parent_run_id}` ({info.status or 'unknown'})",
            f"Started {started}; report built {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"Git SHA `{info.git_sha or 'unknown'}`",
            f"Machine: host `{info.host or 'unknown'}`, device `{info.device or 'unknown'}`; trials ran on "
            f"{devices}. Every time and throughput below was measured there.",
            f"Profile: {info.profile or 'not recorded'}",
            f"Metric `{info.metric}` ({info.goal}); swept: {swept}; seeds: {seeds}",
            self._split_line(),
            f"Trials: {len(trials)} — {completed} ran to their last epoch, {stopped} stopped early by the "
            f"scheduler, {failed} failed, {len(trials) - completed - stopped - failed} running or killed; "
            f"{int(trials['collapsed'].sum())} flagged collapsed",
            f"Wall time: {format_seconds(span)} from first trial start to last trial end; "
            f"{format_seconds(float(durations.sum()))} of trial time in all; per trial "
            f"{format_mean_ci(mean, half, metric_spec('duration_s'), unit=True)} "
            f"(mean ± 95% CI; median {median})",
        ])  # fmt: skip

    def _split_line(self) -> str:
        if self.test_split:
            return f"Splits: {LEGACY_SPLIT_NOTE}; the ranking below chooses on the test split"
        text = "Splits: `probe_acc` and `knn_acc` on the validation split (tag `jepa.metrics_version` ≥ 2)"
        apart = int(((self.trials["outcome"] == "completed") & ~self.trials["ranked"]).sum())
        if apart:
            text += (
                f"; {apart} completed trials have {LEGACY_SPLIT_NOTE} and are kept out of the ranking "
                "(listed under “Trials logged before validation splits”)"
            )
        return text

    def leaderboard(self) -> None:
        info, trials = self.info, self.trials
        board = leaderboard(trials, info, self.metrics)
        board.to_csv(self.out / "leaderboard.csv", index=False)
        spec = metric_spec(info.metric)
        names = dict(zip(trials["config_id"].map(format_value), trials["config"], strict=True))
        verdict = compare_best(
            trials, trials["config_id"], info.metric, info.goal, "configuration", names, power=True
        )
        test = verdict.result.test if verdict else TEST_NAME
        if verdict is None or verdict.result.blocked:
            order = (
                "seed-adjusted mean (`score ~ configuration + seed` fitted by least squares: the plain mean "
                "when every configuration has every seed)"
            )
        else:
            order = "mean (no seeds were logged, so nothing is adjusted for them)"
        ranked = "the trials that ran to their last epoch"
        if ((trials["outcome"] == "completed") & ~trials["ranked"]).any():
            ranked += " with validation-split metrics"
        self.doc.heading(2, "Leaderboard")
        self.doc.para(
            f"Configurations ranked by `{info.metric}` ({info.goal}), best first by {order}. Metric columns: "
            f"mean ± 95% CI over seeds (t distribution) of {ranked}; `seeds` counts those / all trials of "
            "the configuration, and the other trials are in no mean (they are listed below). `best − this`: "
            "the best's ranking mean minus this configuration's, with its simultaneous 95% interval, and "
            f"`adj. p` its adjusted p-value, by {test}. ⚠ marks a configuration with a failed seed: its "
            "figures are over the seeds that survived, which may flatter it."
        )
        keys = list(info.swept_params) or ["config_id"]
        top = board.head(LEADERBOARD_ROWS)
        shown = summary_cells(top, ["rank", *keys], self.metrics, self.labels)
        shown["rank"] = [f"{r} ⚠" if f else str(r) for r, f in zip(top["rank"], top["failed"], strict=True)]
        shown.insert(len(keys) + 1, "seeds", top["seeds"].to_numpy())
        adjusted, plain = top[f"{info.metric}_seed_adjusted"], top.get(f"{info.metric}_mean")
        if plain is not None and ((adjusted - plain).abs() > 1e-12).any():  # a missing cell moved a mean
            label = self.labels.get(info.metric, spec.label)
            shown.insert(
                shown.columns.get_loc(label) + 1,
                f"{spec.name}, seed-adjusted ({spec.unit})" if spec.unit else f"{spec.name}, seed-adjusted",
                [format_mean_ci(v, math.nan, spec) for v in adjusted],
            )
        unit = "points" if spec.unit == "%" else spec.unit
        shown[f"best − this ({unit})"] = diff_vs_best_cells(top, info.metric)
        shown["adj. p"] = [format_p(p) if np.isfinite(p) else "" for p in top["p_vs_best_adjusted"]]
        shown["distinguishable"] = [
            "" if pd.isna(d) else ("yes" if d else "no") for d in top["distinguishable_from_best"]
        ]
        shown["notes"] = leaderboard_notes(top)
        self.doc.table(shown)
        if len(board) > LEADERBOARD_ROWS:
            self.doc.para(
                f"Top {LEADERBOARD_ROWS} of {len(board)} configurations; all are in `leaderboard.csv`."
            )
        if verdict is not None:
            self.doc.para(verdict.sentence)
        if marks_two_seeds(shown):
            self.doc.para(TWO_SEED_NOTE)
        tests = [m for m in self.metrics if m.startswith("test_")]
        if self.test_split:
            self.doc.para(
                f"{LEGACY_SPLIT_NOTE}: this ranking chooses on the test split, so the best "
                "configuration's figure is optimistically biased (it was chosen on the split it is reported "
                "on)."
            )
        elif tests:
            self.doc.para(
                ", ".join(f"`{m}`" for m in tests)
                + " (the `test` columns) are scored once on the test split at the last epoch; they are shown "
                "beside the validation figures and were not used to rank or choose."
            )
        if len(info.swept_params) > 1:
            self.together(board)

    def parameter(self, param: str) -> None:
        info, trials = self.info, self.trials
        self.doc.heading(2, f"Parameter `{param}`")
        levels = param_levels(trials, param)
        table = parameter_table(trials, param, self.metrics)
        note = "Mean ± 95% CI over seeds (t distribution) of the trials that ran to their last epoch"
        note += "; `n` counts them"
        others = [p for p in info.swept_params if p != param]
        if others:
            note += ", pooled over " + ", ".join(f"`{p}`" for p in others)
        if levels.map(format_value).nunique() < trials[param].map(format_value).nunique():
            note += f"; the {trials[param].nunique()} sampled values are grouped into quantile bins"
        self.doc.para(note + ".")
        shown = summary_cells(table, [param, "n"], self.metrics, self.labels)
        self.doc.table(shown)
        names = display_labels(table[param])
        verdict = compare_best(
            trials,
            levels,
            info.metric,
            info.goal,
            f"`{param}` =",
            names,
            pooled=tuple(others),
            count="trials",
        )
        self.doc.para(
            verdict.sentence if verdict else f"Only one value of `{param}` finished: nothing to compare."
        )
        if marks_two_seeds(shown):
            self.doc.para(TWO_SEED_NOTE)
        slug = re.sub(r"[^A-Za-z0-9]+", "_", param)
        shown_metrics = [m for m in ("probe_acc", "knn_acc", "rankme", "train_loss") if m in trials]
        path = rp.plot_metric_vs_param(
            table, param, shown_metrics or [info.metric], self.out / f"{slug}_metrics.png"
        )
        self.doc.image(path, f"Metrics vs {param} (mean ± 95% CI over seeds)")
        order, seeds = [format_value(v) for v in table[param]], per_seed(trials, levels, info.metric)
        texts = seed_note(seeds, param, info.metric, tuple(others))
        if texts is not None:
            label, path = self.labels.get(info.metric), self.out / f"{slug}_seeds.png"
            self.doc.image(rp.plot_per_seed(seeds, order, names, param, info.metric, path, label), texts[0])
            self.doc.para(texts[1])
        self.curves(levels, order, param, slug, names)

    def curves(
        self, by: pd.Series, order: list[str], name: str, slug: str, names: dict[str, str] | None = None
    ) -> None:
        if self.history.empty:
            self.doc.para("No per-epoch metric history was logged: no learning curves.")
            return
        # Per epoch the loss is the training loss, not the final value the tables show.
        specs = [replace(metric_spec(k), name="train loss") if k == "train_loss" else metric_spec(k)
                 for k in HISTORY_KEYS]  # fmt: skip
        panels = [(spec, learning_curves(self.history, self.trials, spec.key, by)) for spec in specs]
        panels = [(spec, curve) for spec, curve in panels if not curve.empty]
        learning = [(spec, curve) for spec, curve in panels if spec.key != "rankme"]
        if learning:
            title = f"Learning curves by {name} (mean over seeds, 95% CI band)"
            path = self.out / f"{slug}_learning.png"
            self.doc.image(rp.plot_curves(learning, order, name, title, path, names=names), title)
        rankme = [(spec, curve) for spec, curve in panels if spec.key == "rankme"]
        if rankme:
            title = f"RankMe by {name} (a fall toward 0 means representation collapse)"
            collapsed = set(self.trials.loc[self.trials["collapsed"], "run_id"])
            rows = self.history[(self.history["key"] == "rankme") & self.history["run_id"].isin(collapsed)]
            singles = [(g["step"].to_numpy(), g["value"].to_numpy()) for _, g in rows.groupby("run_id")]
            path = self.out / f"{slug}_rankme.png"
            plot = rp.plot_curves(rankme, order, name, title, path, self.rankme_line, singles, names)
            self.doc.image(plot, title)

    def together(self, board: pd.DataFrame) -> None:
        info, params = self.info, list(self.info.swept_params)
        self.doc.heading(3, "All swept parameters together")
        path = rp.plot_parallel(board, params, info.metric, self.out / "parallel_coordinates.png")
        self.doc.image(path, "Parallel coordinates of the configurations")
        importance = param_importance(self.trials, params, info.metric)
        if not importance.values:
            self.doc.para(f"Parameter importance: absent — {importance.note}.")
            return
        if importance.note:
            self.doc.para(f"Parameter importance: {importance.note}.")
        self.doc.para(
            f"Parameter importance for `{info.metric}` ({importance.method}): the mean over "
            f"{importance.resamples} bootstrap resamples of the trials that ran to their last epoch (each "
            "resample averaged per configuration, then decomposed; each fit normalized to sum 1), with the "
            "5th to 95th percentile of the resamples."
        )
        values = importance.values
        self.doc.table(pd.DataFrame({
            "parameter": list(values),
            "importance (mean)": [f"{v:.3f}" for v in values.values()],
            "5–95% of resamples": [f"{importance.low[p]:.3f} – {importance.high[p]:.3f}" for p in values],
        }))  # fmt: skip
        path = rp.plot_importance(importance, info.metric, self.out / "param_importance.png")
        self.doc.image(path, "Parameter importance")

    def stopped_early(self) -> None:
        stopped = self.trials[self.trials["outcome"] == "stopped early"]
        if stopped.empty:
            return
        info, spec = self.info, metric_spec(self.info.metric)
        self.doc.heading(2, "Trials stopped early by the scheduler")
        self.doc.para(
            f"The scheduler stopped {_count(len(stopped), 'trial')} before the last epoch. A stopped "
            "trial's figures are from an earlier epoch than the completed trials', so they are in no mean, "
            "interval or test above; it counts against its configuration's `seeds`."
        )
        reached = epochs_reached(self.history)
        epochs = [
            f"{reached.get(r, '–')} of {p if pd.notna(p) else '?'}"
            for r, p in zip(stopped["run_id"], stopped["planned_epochs"], strict=True)
        ]
        values = stopped[info.metric] if info.metric in stopped else pd.Series(np.nan, index=stopped.index)
        self.doc.table(pd.DataFrame({
            "run id": stopped["run_id"].to_numpy(),
            "configuration": stopped["config"].to_numpy(),
            "seed": stopped["seed"].astype(str).to_numpy(),
            "epoch reached": epochs,
            f"{self.labels.get(info.metric, spec.label)}, last logged": [
                format_mean_ci(v, math.nan, spec) for v in values
            ],
        }))  # fmt: skip

    def legacy_apart(self) -> None:
        apart = self.trials[(self.trials["outcome"] == "completed") & ~self.trials["ranked"]]
        if apart.empty:
            return
        spec = metric_spec(self.info.metric)
        self.doc.heading(2, "Trials logged before validation splits")
        self.doc.para(
            f"Trials without a `jepa.metrics_version` tag ≥ 2 ({_count(len(apart), 'trial')}): "
            f"{LEGACY_SPLIT_NOTE}. The "
            "ranking above is on the validation split, so they are left out of it and of every table and "
            "test above; each still counts in its configuration's `seeds`."
        )
        values = (
            apart[self.info.metric] if self.info.metric in apart else pd.Series(np.nan, index=apart.index)
        )
        self.doc.table(pd.DataFrame({
            "run id": apart["run_id"].to_numpy(),
            "configuration": apart["config"].to_numpy(),
            "seed": apart["seed"].astype(str).to_numpy(),
            f"{spec.name}, test split ({spec.unit})" if spec.unit else f"{spec.name}, test split": [
                format_mean_ci(v, math.nan, spec) for v in values
            ],
        }))  # fmt: skip

    def failures(self) -> None:
        self.doc.heading(2, "Failed and collapsed trials")
        bad = self.trials[(self.trials["status"] != "FINISHED") | self.trials["collapsed"]]
        if bad.empty:
            self.doc.para("None: every trial finished and none was flagged as collapsed.")
            return
        if (bad["outcome"] == "failed").any():
            self.doc.para(
                "A failed trial counts against its configuration: the leaderboard's `seeds` shows fewer "
                "complete seeds than it ran, and its row is marked ⚠."
            )
        # The last line of a traceback names the error; the whole text stays in MLflow and trials.csv.
        reasons = [
            r.strip().splitlines()[-1][:200] if isinstance(r, str) and r.strip() else ""
            for r in bad["failure_reason"]
        ]
        self.doc.table(pd.DataFrame({
            "run id": bad["run_id"].to_numpy(),
            "configuration": bad["config"].to_numpy(),
            "seed": bad["seed"].astype(str).to_numpy(),
            "status": bad["status"].to_numpy(),
            "collapsed": np.where(bad["collapsed"], "yes (RankMe flag)", "no"),
            "reason": reasons,
        }))  # fmt: skip


def compose_report(
    info: SweepInfo,
    trials: pd.DataFrame,
    history: pd.DataFrame,
    out: Path,
    rankme_line: tuple[float, str] | None = None,
) -> Doc:
    """The whole report as a :class:`Doc`; plots and ``leaderboard.csv`` are written into ``out``."""
    composer = _Composer(info, trials, history, out, rankme_line)
    composer.header()
    composer.leaderboard()
    for param in info.swept_params:
        composer.parameter(param)
    if not info.swept_params:
        composer.curves(trials["config"], ["default"], "configuration", "curves")
    composer.stopped_early()
    composer.legacy_apart()
    composer.failures()
    composer.doc.heading(2, "Files")
    composer.doc.para(
        "`trials.csv` (one row per trial), `leaderboard.csv` and the plots sit next to this report."
    )
    return composer.doc
