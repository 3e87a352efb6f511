"""Tests of reading a sweep back from MLflow: the histories from the trials' ``jepa.history`` tags, and metric
by metric for the runs without a readable tag, on a real sqlite store and over a real ``mlflow server``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from orchestrator.report import build, fetch, frames
from tests.orchestrator.report.conftest import EPOCHS

KEYS = ["probe_acc", "rankme", "train_loss"]


def test_fetch_histories__tags_and_metric_histories_agree(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, parent = fetch.fetch_runs(store["client"], "ema_momentum", None)
    children = runs[runs["run_id"] != parent]
    read: list[tuple[str, str]] = []
    metric_histories = fetch.metric_histories

    def recorded(client: Any, pairs: list[tuple[str, str]], workers: int = 8) -> pd.DataFrame:
        read.extend(pairs)
        return metric_histories(client, pairs, workers)

    monkeypatch.setattr(fetch, "metric_histories", recorded)
    tagged = fetch.fetch_histories(store["client"], children, KEYS)
    # Only the run logged before the tag and the one whose curves outgrew it are read metric by metric.
    assert {run for run, _ in read} == {store["runs"]["legacy"], store["runs"]["outgrown"]}
    assert sorted(read) == sorted((store["runs"][r], k) for r in ("legacy", "outgrown") for k in KEYS)
    read.clear()
    per_run = fetch.fetch_histories(store["client"], children, KEYS, use_tags=False)
    assert len(read) == len(children) * len(KEYS)
    assert len(tagged) == 5 * EPOCHS * 3 + 3  # the failed trial logged one epoch, its loss NaN
    assert tagged["value"].isna().sum() == 1
    pd.testing.assert_frame_equal(frames.tidy_history(tagged), frames.tidy_history(per_run))


def test_fetch_histories__a_key_outside_the_tag_is_read_metric_by_metric(store: dict[str, Any]) -> None:
    runs, parent = fetch.fetch_runs(store["client"], "ema_momentum", None)
    children = runs[runs["run_id"] != parent]
    tagged = fetch.fetch_histories(store["client"], children, ["img_per_s", "probe_acc"])
    per_run = fetch.fetch_histories(store["client"], children, ["img_per_s", "probe_acc"], use_tags=False)
    assert (tagged["key"] == "img_per_s").sum() == 5 * EPOCHS + 1
    pd.testing.assert_frame_equal(frames.tidy_history(tagged), frames.tidy_history(per_run))


def test_metric_histories__a_retried_epoch_keeps_its_later_value() -> None:
    class Logged:
        def __init__(self, step: int, value: float, timestamp: int) -> None:
            self.step, self.value, self.timestamp = step, value, timestamp

    class Client:
        def get_metric_history(self, run_id: str, key: str) -> list[Logged]:
            return [Logged(1, 0.1, 10), Logged(2, 0.3, 30), Logged(2, 0.2, 20)]

    frame = fetch.metric_histories(Client(), [("a", "probe_acc")])
    assert frame.columns.tolist() == ["run_id", "key", "step", "value"]
    assert frame.sort_values("step")["value"].tolist() == [0.1, 0.3]


@pytest.mark.slow
def test_build_sweep_report__over_a_real_rest_server(store: dict[str, Any], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from orchestrator.report.build_timing import start_mlflow_server

    proc, url = start_mlflow_server(store["uri"])
    try:
        client = MlflowClient(url)
        runs, parent = fetch.fetch_runs(client, "ema_momentum", store["parent"])
        children = runs[runs["run_id"] != parent]
        keys = ["probe_acc", "train_loss"]
        expected = frames.tidy_history(fetch.fetch_histories(store["client"], children, keys, use_tags=False))
        pd.testing.assert_frame_equal(
            frames.tidy_history(fetch.fetch_histories(client, children, keys)), expected
        )
        per_run = fetch.fetch_histories(client, children, keys, use_tags=False)
        pd.testing.assert_frame_equal(frames.tidy_history(per_run), expected)
        out = build.build_sweep_report(url, "ema_momentum", None, tmp_path)
        assert len(pd.read_csv(out / "trials.csv")) == 6
    finally:
        proc.terminate()
        proc.wait(timeout=30)
