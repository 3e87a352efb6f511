"""Nights as MLflow runs: which earlier nights count, and a reset cutting off older ones."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.nightly.baseline import rolling_median


def test_since_reset__a_reset_night_cuts_off_older_nights() -> None:
    from datetime import datetime, timezone

    from orchestrator.nightly.store import PastNight, since_reset

    def night(name: str, reset: bool = False) -> PastNight:
        return PastNight(name, datetime.now(timezone.utc), "ok", {}, reset)

    newest_first = [night("c"), night("b", reset=True), night("a")]
    assert [n.run_id for n in since_reset(newest_first)] == ["c", "b"]
    assert [n.run_id for n in since_reset(newest_first[2:])] == ["a"]


@pytest.mark.slow
def test_past_nights__only_comparable_successful_nights_newest_first(tmp_path: Path) -> None:
    from orchestrator.nightly import store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = store.open_experiment(uri, "nightly")
    base = {store.DEVICE: "cpu:test x2", store.SMOKE: "true", store.SUITE: "abc"}
    made = []
    for i, (tags, status) in enumerate(
        [
            ({}, "ok"),
            ({store.DEVICE: "cuda:other"}, "ok"),  # another device kind
            ({store.SMOKE: "false"}, "ok"),  # the full suite
            ({store.SUITE: "def"}, "ok"),  # other settings
            ({}, "regression"),  # never part of a baseline
            ({}, "ok"),
        ]
    ):
        time.sleep(0.01)  # distinct start times: the query orders by them
        run_id = store.start_night(uri, exp, f"n{i}", {**base, **tags}, {})
        store.log_metrics(uri, run_id, {"bench_cpu.img_per_s": float(i)})
        store.finish_night(uri, run_id, "FINISHED", {store.STATUS: status}, None)
        made.append(run_id)
    kw = {"device": "cpu:test x2", "smoke": True, "suite": "abc"}
    ok = store.past_nights(uri, exp, limit=7, ok_only=True, **kw)
    assert [n.run_id for n in ok] == [made[5], made[0]]
    assert rolling_median([n.metrics for n in ok], 7) == {"bench_cpu.img_per_s": 2.5}
    trend = store.past_nights(uri, exp, limit=7, ok_only=False, exclude=made[5], **kw)
    assert [n.run_id for n in trend] == [made[4], made[0]]
    # Nights logged before validation splits (no metrics-version tag) are not comparable with tonight's.
    assert store.past_nights(uri, exp, limit=7, ok_only=True, metrics_version="2", **kw) == []
    tagged = store.start_night(uri, exp, "n6", {**base, store.METRICS_VERSION: "2"}, {})
    store.finish_night(uri, tagged, "FINISHED", {store.STATUS: "ok"}, None)
    versioned = store.past_nights(uri, exp, limit=7, ok_only=True, metrics_version="2", **kw)
    assert [n.run_id for n in versioned] == [tagged]


@pytest.mark.slow
def test_choose_baseline__nights_under_the_kind_without_its_instruction_set_start_a_new_one(
    tmp_path: Path,
) -> None:
    from argparse import Namespace
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from orchestrator.nightly import measure, store
    from orchestrator.nightly.night import CURRENT_METRICS_VERSION, NightRun, choose_baseline

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = store.open_experiment(uri, "nightly")
    device, legacy = measure.device_kind(), measure.device_kind(with_capability=False)
    if device.startswith("cuda:"):
        pytest.skip("a GPU's kind has always been its name alone")
    assert device.startswith(legacy + " ") and device != legacy  # e.g. "cpu:AMD EPYC x2 AVX512"
    suite = SimpleNamespace(smoke=True, fingerprint="abc", window=7)
    base = {store.SMOKE: "true", store.SUITE: "abc", store.METRICS_VERSION: CURRENT_METRICS_VERSION}
    old = store.start_night(uri, exp, "old", {**base, store.DEVICE: legacy}, {})
    store.log_metrics(uri, old, {"bench_cpu.img_per_s": 9.0})
    store.finish_night(uri, old, "FINISHED", {store.STATUS: "ok"}, None)
    tonight = store.start_night(uri, exp, "tonight", {**base, store.DEVICE: device}, {})
    night = NightRun(
        suite, uri, exp, tonight, "tonight", device, {}, {}, datetime.now(timezone.utc), tmp_path
    )
    args = Namespace(reset_baseline=False)

    notes: list[str] = []
    baseline, source = choose_baseline(night, args, None, notes)
    assert baseline is None and "without its instruction set" in source
    assert len(notes) == 1 and repr(legacy) in notes[0] and repr(device) in notes[0]

    # Once a night under tonight's kind exists, it is the baseline and the old-kind night is not.
    store.finish_night(uri, tonight, "FINISHED", {store.STATUS: "ok"}, None)
    store.log_metrics(uri, tonight, {"bench_cpu.img_per_s": 5.0})
    later = store.start_night(uri, exp, "later", {**base, store.DEVICE: device}, {})
    night = NightRun(suite, uri, exp, later, "later", device, {}, {}, datetime.now(timezone.utc), tmp_path)
    notes = []
    baseline, _ = choose_baseline(night, args, None, notes)
    assert baseline == {"bench_cpu.img_per_s": 5.0} and notes == []
