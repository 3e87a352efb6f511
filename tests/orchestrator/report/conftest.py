"""Sweeps for the report's tests: search_runs-like frames built by hand, and a real sqlite MLflow store
filled with the layout a sweep writes (no Ray)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from orchestrator.report.frames import sweep_info, trials_frame
from orchestrator.tracking import history

T0 = pd.Timestamp("2026-11-27 10:00", tz="UTC")
TUKEY = "seed-blocked two-way ANOVA, Tukey studentized range, simultaneous 95%"
ONE_LINE_PER_SEED = "one line per seed; black: mean over seeds"
TWELVE = (0.2, 0.4, 0.6, 0.8)  # x 3 depths: 12 configurations, enough for an importance
EPOCHS = 3


def make_runs(
    trials: list[dict[str, Any]], swept: list[str], metric: str = "probe_acc", goal: str = "maximize"
) -> pd.DataFrame:
    """A search_runs-like frame: a parent run and one child per dict (params as strings, like MLflow).

    Trials carry ``jepa.metrics_version`` = "2" (validation-split metrics) unless the dict says
    ``"metrics_version": None``; ``"stopped": True`` tags an ASHA stop."""
    rows: list[dict[str, Any]] = [
        {
            "run_id": "p0",
            "status": "RUNNING",
            "start_time": T0,
            "end_time": pd.NaT,
            "tags.jepa.role": "sweep",
            "tags.jepa.sweep": "fixture",
            "tags.jepa.swept_params": json.dumps(swept),
            "tags.jepa.metric": metric,
            "tags.jepa.metric_goal": goal,
            "tags.jepa.git_sha": "abc123",
            "tags.jepa.host": "testhost",
            "tags.jepa.device": "cpu",
        }
    ]
    for i, t in enumerate(trials):
        row: dict[str, Any] = {
            "run_id": f"r{i}",
            "status": t.get("status", "FINISHED"),
            "start_time": T0 + pd.Timedelta(seconds=10 * i),
            "end_time": T0 + pd.Timedelta(seconds=10 * i + t.get("duration", 100)),
            "tags.mlflow.parentRunId": "p0",
            "tags.jepa.role": "trial",
            "tags.jepa.seed": str(t.get("seed", 0)),
            "tags.jepa.collapsed": "true" if t.get("collapsed") else None,
            "tags.jepa.failure_reason": t.get("reason"),
            "tags.jepa.stopped_early": "true" if t.get("stopped") else None,
            "tags.jepa.metrics_version": t.get("metrics_version", "2"),
        }
        row.update({f"params.{k}": str(v) for k, v in t["params"].items()})
        row.update({f"metrics.{k}": v for k, v in t.get("metrics", {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def ema_trials(values: dict[float, list[float]]) -> list[dict[str, Any]]:
    """One trial per (EMA momentum value, seed) with the given probe accuracies."""
    return [
        {"params": {"ema.momentum_start": v, "train.seed": s}, "seed": s, "metrics": {"probe_acc": acc}}
        for v, accs in values.items()
        for s, acc in enumerate(accs)
    ]


def two_param_trials(ratios: tuple[float, ...] = (0.2, 0.4, 0.6)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    trials_in = [
        {
            "params": {"mask.ratio": ratio, "predictor.depth": depth, "train.seed": seed},
            "seed": seed,
            "metrics": {"probe_acc": 0.5 + ratio + 0.001 * depth + rng.normal(0, 0.005)},
        }
        for ratio in ratios
        for depth in (1, 2, 3)
        for seed in range(3)
    ]
    runs = make_runs(trials_in, ["mask.ratio", "predictor.depth"])
    return trials_frame(runs, sweep_info(runs))


@pytest.fixture(scope="package")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real sqlite MLflow store holding one sweep: 2 EMA values x 3 seeds, one FAILED, one collapsed.

    Each trial carries the ``jepa.history`` tag a trial writes with its epochs, except ``legacy`` (logged
    before the tag) and ``outgrown`` (whose curves did not fit a tag: the trial writes ``""``).
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("ema_momentum", artifact_location=str(root / "artifacts"))
    parent = client.create_run(
        exp,
        tags={
            "jepa.role": "sweep", "jepa.sweep": "ema_momentum", "jepa.swept_params": '["ema.momentum_start"]',
            "jepa.metric": "probe_acc", "jepa.metric_goal": "maximize", "jepa.git_sha": "deadbeef",
            "jepa.host": "testhost", "jepa.device": "cpu", "jepa.profile": "cpu",
            "jepa.profile_reason": "the Ray cluster has no GPU",
        },
    ).info.run_id  # fmt: skip
    runs: dict[str, str] = {}
    for i, (momentum, seed) in enumerate((m, s) for m in (0.99, 0.996) for s in range(3)):
        failed, collapsed = i == 2, i == 4
        tags = {
            "mlflow.parentRunId": parent, "jepa.role": "trial", "jepa.seed": str(seed),
            "jepa.config_id": f"cfg{momentum}", "jepa.device": "cpu",
        }  # fmt: skip
        if failed:
            tags["jepa.failure_reason"] = "RuntimeError: CUDA out of memory in epoch 2"
        if collapsed:
            tags["jepa.collapsed"] = "true"
        run = client.create_run(exp, tags=tags).info.run_id
        params = {"ema.momentum_start": momentum, "train.seed": seed, "mask.ratio": 0.4, "data.subset": None,
                  "model.embed_dim": 64, "eval.collapse_threshold": 0.05}  # fmt: skip
        epochs = 1 if failed else EPOCHS
        metrics, curves = [], {}
        for epoch in range(1, epochs + 1):
            # The seed moves both settings alike, plus a small interaction: residual variance to test with.
            acc = 0.5 + 0.1 * epoch + (0.05 + 0.001 * seed if momentum == 0.996 else 0.0) + 0.002 * seed
            values = {"probe_acc": acc, "knn_acc": acc - 0.02, "rankme": 1.0 if collapsed else 30.0 + epoch,
                      "train_loss": math.nan if failed else 1.0 / epoch,  # NaN: stored as 0 + is_nan
                      "img_per_s": 1000.0 + seed}  # fmt: skip
            metrics += [Metric(k, v, 1000 + epoch, epoch) for k, v in values.items()]
            history.add_epoch(curves, epoch, values)
        tags = [] if i == 5 else [RunTag(history.HISTORY_TAG, "" if i == 1 else history.encode(curves))]
        runs[{5: "legacy", 1: "outgrown"}.get(i, f"trial{i}")] = run
        client.log_batch(
            run, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()], tags=tags
        )
        client.set_terminated(run, "FAILED" if failed else "FINISHED")
    return {"uri": uri, "parent": parent, "root": root, "client": client, "runs": runs}
