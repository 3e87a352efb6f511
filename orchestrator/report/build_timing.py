"""How long a 1,000-trial report takes to build: a synthetic sweep, built from frames, sqlite and ``http://``.

Usage::

    python -m orchestrator.report.build_timing [--trials 1000] [--epochs 30] [--mlflow] [--server] [--db FILE]

Times the pure path (frames in memory -> report files) and, with ``--mlflow``, writes the same synthetic
sweep into a fresh sqlite MLflow store (each trial with the ``jepa.history`` tag a real trial writes) and
times reading it back: ``search_runs``, the histories from the tags and, for comparison, through one
``get_metric_history`` call per run and metric (the route of runs logged before the tag), then the whole
:func:`orchestrator.report.build.build_sweep_report`. ``--server`` does the same over an ``mlflow server`` on
loopback (the ``http://`` route a cluster takes).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GRID: dict[str, list[Any]] = {
    "mask.ratio": [0.2, 0.3, 0.4, 0.5, 0.6],
    "predictor.depth": [1, 2, 3, 4],
    "ema.momentum_start": [0.99, 0.993, 0.996, 0.998, 0.999],
}
HISTORY_METRICS = (
    "train_loss", "probe_acc", "knn_acc", "rankme", "feature_std",
    "img_per_s", "epoch_time_s", "eval_time_s", "lr", "ema_momentum",
)  # fmt: skip
BASE_PARAMS: dict[str, Any] = {
    "data.name": "fashion_mnist", "data.root": None, "data.image_size": 28, "data.subset": 30000,
    "data.hflip": False, "model.patch_size": 4, "model.embed_dim": 128, "model.depth": 4,
    "model.num_heads": 4, "predictor.embed_dim": 64, "predictor.num_heads": 4, "mask.num_targets": 4,
    "ema.momentum_end": 1.0, "optim.lr": 0.0015, "optim.weight_decay": 0.04, "optim.warmup_epochs": 1.0,
    "loss.kind": "l2", "train.batch_size": 256, "train.device": "cpu", "eval.collapse_threshold": 0.05,
    "eval.every": 1,
}  # fmt: skip


def synthetic_sweep(
    trials: int = 1000, epochs: int = 30, seed: int = 0, grid: dict[str, list[Any]] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A parent run and ``trials`` trial runs as ``mlflow.search_runs`` would return them, plus histories.

    Configurations cycle through the grid; seeds count up per configuration. About 2% of trials fail
    halfway and 1% collapse (RankMe near 1).
    """
    grid = grid or GRID
    rng = np.random.default_rng(seed)
    configs = [dict(zip(grid, values, strict=True)) for values in _product(list(grid.values()))]
    t0 = pd.Timestamp("2026-11-27 10:00", tz="UTC")
    rows: list[dict[str, Any]] = [{
        "run_id": "parent", "status": "RUNNING", "start_time": t0, "end_time": pd.NaT,
        "tags.jepa.role": "sweep", "tags.jepa.sweep": "bench",
        "tags.jepa.swept_params": json.dumps(list(grid)),
        "tags.jepa.metric": "probe_acc", "tags.jepa.metric_goal": "maximize", "tags.jepa.git_sha": "0" * 40,
        "tags.jepa.host": "bench-host", "tags.jepa.device": "cpu",
    }]  # fmt: skip
    history: dict[str, list[Any]] = {"run_id": [], "key": [], "step": [], "value": []}
    steps = np.arange(1, epochs + 1)
    for i in range(trials):
        config = configs[i % len(configs)]
        run_id = f"run{i:05d}"
        quality = 0.7 + 0.1 * config.get("mask.ratio", 0.4) + 0.01 * config.get("predictor.depth", 2)
        failed, collapsed = rng.random() < 0.02, rng.random() < 0.01
        n_epochs = epochs // 2 if failed else epochs
        curves = {
            "train_loss": 1.0 / np.sqrt(steps) + rng.normal(0, 0.01, epochs),
            "probe_acc": quality * (1 - np.exp(-steps / 5)) + rng.normal(0, 0.01, epochs),
            "knn_acc": (quality - 0.03) * (1 - np.exp(-steps / 5)) + rng.normal(0, 0.01, epochs),
            "rankme": (1.5 if collapsed else 60.0) + rng.normal(0, 1, epochs).cumsum() * 0.1,
            "feature_std": np.full(epochs, 0.08) + rng.normal(0, 0.001, epochs),
            "img_per_s": 3000 + rng.normal(0, 50, epochs),
            "epoch_time_s": 10 + rng.normal(0, 0.5, epochs),
            "eval_time_s": 2 + rng.normal(0, 0.1, epochs),
            "lr": np.linspace(1e-4, 1.5e-3, epochs),
            "ema_momentum": np.linspace(config.get("ema.momentum_start", 0.996), 1.0, epochs),
        }
        start = t0 + pd.Timedelta(seconds=30 * i)
        row: dict[str, Any] = {
            "run_id": run_id, "status": "FAILED" if failed else "FINISHED", "start_time": start,
            "end_time": start + pd.Timedelta(seconds=float(12 * n_epochs + rng.normal(0, 3))),
            "tags.mlflow.parentRunId": "parent", "tags.jepa.role": "trial",
            "tags.jepa.seed": str(i // len(configs)),
            "tags.jepa.device": "cpu", "tags.jepa.collapsed": "true" if collapsed else None,
            "tags.jepa.failure_reason": "RuntimeError: loss is NaN at epoch 15" if failed else None,
        }  # fmt: skip
        params = {**BASE_PARAMS, **config, "train.seed": i // len(configs), "train.epochs": epochs}
        row.update({f"params.{k}": str(v) for k, v in params.items()})
        row.update({f"metrics.{k}": float(v[n_epochs - 1]) for k, v in curves.items()})
        rows.append(row)
        for key, values in curves.items():
            history["run_id"] += [run_id] * n_epochs
            history["key"] += [key] * n_epochs
            history["step"] += list(range(1, n_epochs + 1))
            history["value"] += values[:n_epochs].tolist()
    return pd.DataFrame(rows), pd.DataFrame(history)


def _product(lists: list[list[Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [()]
    for values in lists:
        out = [(*prefix, v) for prefix in out for v in values]
    return out


def write_to_mlflow(tracking_uri: str, runs: pd.DataFrame, history: pd.DataFrame) -> str:
    """Logs the synthetic sweep into an MLflow store; returns the parent run id.

    Each trial's curves go into its ``jepa.history`` tag as a trial writes them
    (:func:`orchestrator.tracking.history.add_epoch` per epoch, then ``encode``; ``""`` when they outgrow a
    tag), in the same ``log_batch`` as its metrics.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from orchestrator.tracking import history as run_history

    client = MlflowClient(tracking_uri)
    # Artifacts next to the database, not in ./mlruns of whatever directory the bench runs from.
    exp = client.create_experiment(
        "bench", artifact_location=str(Path(tracking_uri[len("sqlite:///") :]).parent / "artifacts")
    )
    parent_row = runs.iloc[0]
    tags = {c[5:]: v for c, v in parent_row.items() if c.startswith("tags.") and isinstance(v, str)}
    parent = client.create_run(exp, tags=tags).info.run_id
    by_run = dict(tuple(history.groupby("run_id")))
    for _, row in runs.iloc[1:].iterrows():
        tags = {c[5:]: v for c, v in row.items() if c.startswith("tags.") and isinstance(v, str)}
        tags["mlflow.parentRunId"] = parent
        run_id = client.create_run(
            exp, start_time=int(row["start_time"].timestamp() * 1000), tags=tags
        ).info.run_id
        params = [Param(c[7:], v) for c, v in row.items() if c.startswith("params.")]
        h = by_run[row["run_id"]]
        metrics = [
            Metric(k, float(v), 0, int(s)) for k, s, v in zip(h["key"], h["step"], h["value"], strict=True)
        ]
        epochs: dict[int, dict[str, float]] = {}
        for k, s, v in zip(h["key"], h["step"], h["value"], strict=True):
            epochs.setdefault(int(s), {})[k] = float(v)
        curves: run_history.Curves = {}
        for step in sorted(epochs):  # what the trial does at the end of each epoch
            run_history.add_epoch(curves, step, epochs[step])
        tag = RunTag(run_history.HISTORY_TAG, run_history.encode(curves) or "")
        client.log_batch(run_id, metrics=metrics, params=params, tags=[tag])
        client.set_terminated(run_id, row["status"], end_time=int(row["end_time"].timestamp() * 1000))
    return parent


def time_fetch(uri: str, parent: str, label: str) -> None:
    """Prints how long reading runs and histories from ``uri`` takes, by the tags and metric by metric."""
    from mlflow import MlflowClient

    from orchestrator.report import fetch
    from orchestrator.tracking.history import HISTORY_KEYS

    client = MlflowClient(uri)
    client.search_experiments(max_results=1)  # warm up: connection, server workers, store init
    t = time.perf_counter()
    fetched, _ = fetch.fetch_runs(client, "bench", parent)
    print(f"[{label}] fetch_runs (search_runs, {len(fetched)} runs): {time.perf_counter() - t:.2f} s")
    keys = sorted(HISTORY_KEYS)
    trials = fetched[fetched["run_id"] != parent]
    routes = ((True, "from the jepa.history tags"), (False, f"per run+key, {fetch.HISTORY_WORKERS} threads"))
    for use_tags, how in routes:
        t = time.perf_counter()
        rows = fetch.fetch_histories(client, trials, keys, use_tags=use_tags)
        print(f"[{label}] histories {how}: {time.perf_counter() - t:.2f} s ({len(rows)} rows, keys {keys})")


def start_mlflow_server(db_uri: str, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """Starts ``mlflow server`` on a free loopback port over a sqlite store; returns (process, URL).

    It runs in the database's folder so nothing it writes (``mlartifacts/``) lands in the caller's cwd.
    """
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", db_uri,
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]  # fmt: skip
    cwd = Path(db_uri[len("sqlite:///") :]).parent
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded 2-core machine has taken 35 s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"mlflow server on {url} did not come up (exit code {proc.poll()})")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--mlflow", action="store_true", help="also time fetching from a sqlite MLflow store")
    parser.add_argument("--server", action="store_true", help="and from an mlflow server over http (REST)")
    parser.add_argument("--out", default=None, help="reports root (default: a temporary folder)")
    parser.add_argument("--db", default=None, help="sqlite file to keep the synthetic store in and reuse")
    args = parser.parse_args()
    from mlflow import MlflowClient

    from orchestrator.report import build as report

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        t = time.perf_counter()
        runs, history = synthetic_sweep(args.trials, args.epochs)
        print(f"synthetic frames: {len(runs) - 1} trials, {len(history)} history rows "
              f"({time.perf_counter() - t:.2f} s to generate)")  # fmt: skip
        import optuna  # noqa: F401  (imported once per process: not part of building a report)

        t, cpu = time.perf_counter(), time.process_time()
        path = report.build_report_from_frames(runs, history, out)
        print(f"pure path, frames -> report files: {time.perf_counter() - t:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} s CPU ({path})")  # fmt: skip
        if not (args.mlflow or args.server):
            return
        db = Path(args.db).resolve() if args.db else Path(tmp) / "mlflow.db"
        uri = f"sqlite:///{db}"
        if db.exists():  # a store this script wrote before: its latest bench sweep
            parent = MlflowClient(uri).search_runs(
                [MlflowClient(uri).get_experiment_by_name("bench").experiment_id],
                "tags.`jepa.role` = 'sweep'", max_results=1, order_by=["start_time DESC"],
            )[0].info.run_id  # fmt: skip
        else:
            t = time.perf_counter()
            parent = write_to_mlflow(uri, runs, history)
            print(f"writing the sweep into sqlite MLflow (setup): {time.perf_counter() - t:.1f} s")
        time_fetch(uri, parent, "sqlite")
        t, cpu = time.perf_counter(), time.process_time()
        path = report.build_sweep_report(uri, "bench", parent, out)
        print(f"[sqlite] build_sweep_report end to end: {time.perf_counter() - t:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} s CPU ({path})")  # fmt: skip
        if args.server:
            proc, url = start_mlflow_server(uri, workers=2)
            try:
                time_fetch(url, parent, "http")
                t = time.perf_counter()
                path = report.build_sweep_report(url, "bench", parent, out)
                print(f"[http] build_sweep_report end to end: {time.perf_counter() - t:.2f} s ({path})")
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
