"""Bounded retries and the metric outbox, against stand-ins for a store that goes away and comes back."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from orchestrator.tracking import retry as tr

REFUSED = "API request to http://127.0.0.1:1/api/2.0/mlflow/runs/log-batch failed with exception Max retries"


def test_is_transient__away_or_busy_is_retried_a_wrong_request_is_not() -> None:
    from mlflow.exceptions import MlflowException, RestException

    assert tr.is_transient(MlflowException(REFUSED))
    assert tr.is_transient(MlflowException("(sqlite3.OperationalError) database is locked"))
    assert tr.is_transient(ConnectionRefusedError("refused"))
    assert tr.is_transient(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "restarting"}))
    assert not tr.is_transient(RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"}))
    assert not tr.is_transient(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}))
    assert not tr.is_transient(MlflowException("Run 'abc' not found"))
    assert not tr.is_transient(ValueError("bad value"))


class Flaky:
    """Fails with a refused connection ``failures`` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def __call__(self, value: int) -> int:
        from mlflow.exceptions import MlflowException

        self.calls += 1
        if self.calls <= self.failures:
            raise MlflowException(REFUSED)
        return value * 2


def test_retrying__waits_out_a_short_outage_and_gives_up_past_the_bound() -> None:
    slept: list[float] = []
    flaky = Flaky(3)
    assert tr.retrying(flaky, 21, where="store", bound_s=60, sleep=slept.append) == 42
    assert flaky.calls == 4 and slept == [0.5, 1.0, 2.0]  # backoff doubles

    forever = Flaky(10**9)
    started = time.monotonic()
    with pytest.raises(tr.TrackingUnavailable, match=r"store did not answer for 0 s .*OUTAGE_S"):
        tr.retrying(forever, 1, where="store", bound_s=0.3, sleep=time.sleep)
    assert time.monotonic() - started < 5 and forever.calls >= 2


def test_retrying__a_wrong_request_fails_at_once() -> None:
    calls = []

    def wrong() -> None:
        calls.append(1)
        raise ValueError("bad")

    with pytest.raises(ValueError):
        tr.retrying(wrong, bound_s=60, sleep=lambda s: None)
    assert calls == [1]


def test_outage_bound__from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tr.OUTAGE_ENV, raising=False)
    assert tr.outage_bound_s() == tr.DEFAULT_OUTAGE_S
    monkeypatch.setenv(tr.OUTAGE_ENV, "42")
    assert tr.outage_bound_s() == 42.0


class Point:
    def __init__(self, step: int) -> None:
        self.step = step


class Store:
    """A run's metric store that can be taken away; ``lose_answer`` stores a batch but fails its reply."""

    def __init__(self) -> None:
        self.down = False
        self.lose_answer = False
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def _check(self) -> None:
        from mlflow.exceptions import MlflowException

        if self.down:
            raise MlflowException(REFUSED)

    def log_batch(self, run_id: str, metrics: list[Any], tags: list[Any] | None = None) -> None:
        self._check()
        with self.lock:
            self.batches.append(metrics[0].step)
        if self.lose_answer:
            self.lose_answer = False
            raise ConnectionResetError("reset after the write")

    def get_metric_history(self, run_id: str, key: str) -> list[Point]:
        self._check()
        return [Point(s) for s in self.batches]


def batch(epoch: int) -> list[Any]:
    from mlflow.entities import Metric

    return [Metric(tr.EPOCH_MARKER, 1.0 / epoch, 0, epoch)]


def wait_for(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_outbox__epochs_queue_while_the_store_is_away_and_arrive_once_in_order() -> None:
    store = Store()
    box = tr.MetricOutbox(store, "run", "store", bound_s=30)
    box.put(1, batch(1))
    wait_for(lambda: store.batches == [1])
    store.down = True
    for epoch in (2, 3, 4):  # training goes on: put never blocks on the store
        started = time.monotonic()
        box.put(epoch, batch(epoch))
        assert time.monotonic() - started < 0.1
    time.sleep(0.3)
    assert [e for e, _ in box.pending()] == [2, 3, 4] and box.down_since is not None
    store.down = False
    box.flush(timeout_s=20)
    assert store.batches == [1, 2, 3, 4] and box.pending() == []
    box.close()


def test_outbox__a_write_whose_answer_was_lost_is_not_sent_again() -> None:
    store = Store()
    box = tr.MetricOutbox(store, "run", "store", bound_s=30)
    store.lose_answer = True
    box.put(1, batch(1))
    box.put(2, batch(2))
    box.flush(timeout_s=20)
    assert store.batches == [1, 2]  # epoch 1 landed with its answer lost: looked up, not resent
    box.close()


def test_outbox__past_the_bound_the_training_thread_hears_it() -> None:
    store = Store()
    store.down = True
    box = tr.MetricOutbox(store, "run", "store", bound_s=0.5)
    box.put(1, batch(1))
    wait_for(lambda: box.error is not None)
    with pytest.raises(tr.TrackingUnavailable, match="did not answer for 0 s|did not answer for 1 s"):
        box.put(2, batch(2))
    with pytest.raises(tr.TrackingUnavailable):
        box.flush(timeout_s=1)
    assert [e for e, _ in box.pending()] == [1]  # kept for the checkpoint
    box.close()


def test_trial_run__a_checkpoints_pending_epochs_are_requeued_once(tmp_path) -> None:
    """What a retried trial does with the epochs its killed attempt had queued but maybe not sent."""
    from orchestrator.tracking import history as history_tag
    from orchestrator.tracking import runs as tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = tracking.get_or_create_experiment(uri, "unit")
    kwargs = dict(
        trial_id="abcde_00000", run_name="t", tags={}, params={}, config_yaml="", system_metrics=False
    )
    run = tracking.TrialRun.open(uri, exp, run_id=None, **kwargs)
    run.log_epoch(1, {"train_loss": 1.0, "lr": 0.1})
    run.flush()
    assert run.pending() == []
    # The checkpoint of epoch 3 said epochs 1-3 were queued; only epoch 1 reached the store before the kill.
    pending = [
        {"epoch": e, "metrics": [["train_loss", 1.0 / e, 1000 * e], ["lr", 0.1, 1000 * e]]} for e in (1, 2, 3)
    ]
    run.detach(flush_s=0)
    retry = tracking.TrialRun.open(uri, exp, run_id=run.run_id, **kwargs)
    assert retry.logged_epochs == 1 and retry.requeue(pending) == 2 and retry.logged_epochs == 3
    assert not retry.log_epoch(3, {"train_loss": 9.0}) and retry.log_epoch(4, {"train_loss": 0.2})
    retry.close("FINISHED")
    history = tracking.client(uri).get_metric_history(run.run_id, "train_loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5), (3, 1.0 / 3), (4, 0.2)]
    assert sorted(m.timestamp for m in history if m.step in (2, 3)) == [2000, 3000]  # when the epochs ended
    # The report's curves travel as one tag, rebuilt on the retry from the store and the requeued epochs.
    tag = tracking.client(uri).get_run(run.run_id).data.tags[history_tag.HISTORY_TAG]
    assert history_tag.decode(tag) == {
        "train_loss": [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3)), (4, 0.2)]
    }
