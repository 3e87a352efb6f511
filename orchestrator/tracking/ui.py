"""What the MLflow UI shows of a sweep: the parent run carries the answer, each trial its dataset and source.

MLflow's runs table and chart view read a few records that the plain metrics and params do not fill:

- the parent run's **answer** (:func:`log_answer`): the best configuration's figures as metrics
  (``best_<metric>``, its test figures beside them), the verdict as ``jepa.verdict*`` tags, the leaderboard as
  a logged table (``leaderboard.json``, shown in the run's artifacts) and a note (``mlflow.note.content``,
  the run page's description) with the sweep's ``description`` and the answer in words;
- each trial's **dataset** as an MLflow input (:func:`dataset_input`: the Dataset column) and its git commit
  as the **source** (:func:`source_tags`: the Source column);
- a URL that opens on the trials with their charts (:func:`trials_url`).

Everything goes through :class:`mlflow.MlflowClient`'s public methods and MLflow's documented system tags.
"""

from __future__ import annotations

import hashlib
import json
import math
import urllib.parse
from typing import Any

import numpy as np
import pandas as pd

NOTE = "mlflow.note.content"  # the run's (or experiment's) description in the UI, markdown
DESCRIPTION = "jepa.description"  # the sweep file's description, on the parent run from its start
LEADERBOARD_TABLE = "leaderboard.json"
ENTRY_POINT = "orchestrator.sweep"
# The parent's answer: the best configuration's mean over seeds of these metrics, when the trials have them.
ANSWER_METRICS = ("probe_acc", "test_probe_acc", "knn_acc", "test_knn_acc", "rankme", "train_loss")


def source_tags(git_sha: str) -> dict[str, str]:
    """MLflow's source tags: the Source column names the entry point and links the commit.

    A ``-dirty`` commit (uncommitted changes) keeps its mark in ``jepa.git_sha``; MLflow's commit tag holds
    the bare hash it can link to.
    """
    tags = {"mlflow.source.type": "LOCAL", "mlflow.source.name": ENTRY_POINT}
    commit = git_sha.removesuffix("-dirty")
    if commit and commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    return tags


# --------------------------------------------------------------------------------------------- trials
def dataset_input(cfg: Any) -> Any:
    """The trial's data as an :class:`mlflow.entities.DatasetInput` (context ``train``).

    The digest is of what the trial reads: the dataset, its pretraining selection (``data.subset`` drawn with
    ``train.seed``) and the index sets of the validation, probe-train and test splits, so two trials share a
    digest exactly when they saw the same images. The profile holds the split sizes.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from jepa_core import data as jdata

    d, ev = cfg.data, cfg.eval
    splits = jdata.eval_splits(
        d.name, d.root, val_size=ev.val_size, train_subset=ev.train_subset, test_subset=ev.test_subset or None
    )
    train_size = jdata.split_size(d.name, "train", d.root)
    pretrain = min(d.subset, train_size) if d.subset else train_size
    sizes = {
        "pretrain": int(pretrain),
        "validation": len(splits.validation),
        "probe_train": len(splits.probe_train),
        "test": len(splits.test),
    }
    chosen = [d.name, d.image_size, d.subset, cfg.train.seed if d.subset else None]
    h = hashlib.sha256(json.dumps(chosen).encode())
    for part in (splits.validation, splits.probe_train, splits.test):
        h.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    dataset = Dataset(
        name=d.name,
        digest=h.hexdigest()[:16],
        source_type="local",
        source=json.dumps({"root": d.root or f"default location of {d.name}"}),
        profile=json.dumps(sizes),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "train")])


# --------------------------------------------------------------------------------------------- parent
def answer(runs: pd.DataFrame, parent_id: str) -> dict[str, Any] | None:
    """The sweep's answer from a search_runs frame: the best configuration, its figures, and the verdict.

    The same leaderboard and comparison as the report (:mod:`orchestrator.report.frames`), so the parent run
    and the report cannot disagree. None when no trial ran to its last epoch with the metric.
    """
    from orchestrator import report as rd

    info = rd.sweep_info(runs, parent_id)
    trials = rd.trials_frame(runs, info)
    metrics = [m for m in dict.fromkeys([info.metric, f"test_{info.metric}", *ANSWER_METRICS]) if m in trials]
    if trials.empty or info.metric not in trials or not trials["ranked"].any():
        return None
    board = rd.leaderboard(trials, info, metrics)
    best = board.iloc[0]
    if not best["n"]:
        return None
    names = dict(zip(trials["config_id"].map(rd.format_value), trials["config"], strict=True))
    verdict = rd.compare_best(trials, trials["config_id"], info.metric, info.goal, "configuration", names)
    figures = {
        f"best_{m}": float(best[f"{m}_mean"])
        for m in metrics
        if math.isfinite(float(best.get(f"{m}_mean", math.nan)))
    }
    half = float(best.get(f"{info.metric}_ci", math.nan))
    if math.isfinite(half):
        figures[f"best_{info.metric}_ci95"] = half
    figures["best_seeds"] = float(best["n"])
    label = names.get(rd.format_value(best["config_id"]), str(best["config_id"]))
    tags = {
        "jepa.best_config": label,
        "jepa.best_config_id": str(best["config_id"]),
        **{f"jepa.best.{p}": rd.format_value(best[p]) for p in info.swept_params if p in best},
    }
    if verdict is None:
        tags["jepa.verdict"] = "only one configuration finished: nothing to compare"
        tags["jepa.verdict.distinguishable"] = "untested"
    else:
        tags["jepa.verdict"] = verdict.sentence[:5000]
        tags["jepa.verdict.distinguishable"] = str(verdict.distinguishable).lower()
        tags["jepa.verdict.test"] = verdict.result.test
        if verdict.runner_up is not None:
            tags["jepa.verdict.runner_up"] = names.get(verdict.runner_up, verdict.runner_up)
    return {"info": info, "board": board, "metrics": figures, "tags": tags, "label": label}


def _table(board: pd.DataFrame, info: Any) -> pd.DataFrame:
    """The leaderboard as logged: rank, the swept values, seeds and the ranking metric's mean and interval."""
    keep = ["rank", *info.swept_params, "seeds"]
    for m in (info.metric, f"test_{info.metric}"):
        keep += [c for c in (f"{m}_mean", f"{m}_ci") if c in board]
    keep += [c for c in ("diff_vs_best", "p_vs_best_adjusted", "distinguishable_from_best") if c in board]
    table = board[[c for c in dict.fromkeys(keep) if c in board]].copy()

    # JSON has neither NaN nor numpy scalars; MLflow's table view shows strings as they are.
    def plain(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return None
        v = v.item() if isinstance(v, np.generic) else v
        return v if isinstance(v, (str, int, float, bool)) else str(v)

    return table.astype(object).map(plain)


def note_text(description: str | None, found: dict[str, Any] | None, report_dir: str | None = None) -> str:
    """The parent run's note (markdown): the sweep's description, then its answer in words."""
    parts = [description.strip()] if description and description.strip() else []
    if found is None:
        parts.append("No trial ran to its last epoch with the sweep's metric: no answer.")
    else:
        from orchestrator import report as rd

        info, m = found["info"], found["metrics"]
        spec = rd.metric_spec(info.metric)
        half = m.get(f"best_{info.metric}_ci95", math.nan)
        value = rd.format_mean_ci(m[f"best_{info.metric}"], half, spec, unit=True)
        seeds = f", 95% CI over {int(m['best_seeds'])} seeds" if math.isfinite(half) else ""
        line = f"**Best configuration:** `{found['label']}`: {spec.name} {value} (validation split{seeds})"
        test = m.get(f"best_test_{info.metric}")
        if test is not None:
            shown = rd.format_mean_ci(test, math.nan, rd.metric_spec(f"test_{info.metric}"), unit=True)
            line += f"; on the test split {shown} (not used to choose)"
        parts += [line + ".", found["tags"]["jepa.verdict"]]
    where = f" (also at `{report_dir}`)" if report_dir else ""
    parts.append(f"The whole report is in this run's artifacts, `report/report.html`{where}.")
    return "\n\n".join(parts)


def log_answer(client: Any, runs: pd.DataFrame, parent_id: str, report_dir: str | None = None) -> None:
    """Logs the sweep's answer onto its parent run: metrics, verdict tags, leaderboard table, note.

    Rebuilding a report logs it again: metrics gain a newer value, tags and the note are replaced, and the
    leaderboard table is written once per run (MLflow appends to an existing table file, so a rebuild that
    finds one writes ``leaderboard_<n>.json`` beside it instead of doubling its rows).
    """
    from mlflow.entities import Metric

    found = answer(runs, parent_id)
    parent = runs.loc[runs["run_id"] == parent_id].iloc[0]
    description = parent.get(f"tags.{DESCRIPTION}")
    if found is not None:
        now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
        client.log_batch(parent_id, metrics=[Metric(k, v, now, 0) for k, v in found["metrics"].items()])
        for key, value in found["tags"].items():
            client.set_tag(parent_id, key, value)
        taken = {a.path for a in client.list_artifacts(parent_id)}
        name, k = LEADERBOARD_TABLE, 1
        while name in taken:
            k += 1
            name = f"leaderboard_{k}.json"
        client.log_table(parent_id, _table(found["board"], found["info"]), name)
    text = note_text(description if isinstance(description, str) else None, found, report_dir)
    client.set_tag(parent_id, NOTE, text)


def trials_url(runs_url: str, parent_id: str, metric: str, goal: str) -> str:
    """The runs-table URL narrowed to the sweep's trials, best first, opened on their metric charts.

    MLflow lists child runs folded under their parent while the table is ordered by start time; filtered on
    the parent id tag and ordered by the sweep's metric, the trials are the rows themselves, and
    ``compareRunsMode=CHART`` opens the chart view on them.
    """
    query = urllib.parse.urlencode(
        {
            "searchFilter": f"tags.`mlflow.parentRunId` = '{parent_id}'",
            "orderByKey": f"metrics.`{metric}`",
            "orderByAsc": str(goal == "minimize").lower(),
            "compareRunsMode": "CHART",
        },
        quote_via=urllib.parse.quote,
    )
    return f"{runs_url}?{query}"
