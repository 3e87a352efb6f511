"""Writing to MLflow through outages: bounded retries, and a metric outbox off the training path.

A tracking server that restarts, or a sqlite file another sweep holds for a moment ("database is locked"),
must not end a trial that has hours of training in it. Every call made through :func:`retrying` (and every
method of :class:`RetryingClient`) is retried with backoff while its errors are transient, for at most
:func:`outage_bound_s` seconds from the first failure (``$JEPA_TRACKING_OUTAGE_S``, default
:data:`DEFAULT_OUTAGE_S`); past that it raises :class:`TrackingUnavailable`, whose one-line message names the
store and the last error. Errors MLflow answers on purpose (a missing run, an invalid value) are never
retried.

:class:`MetricOutbox` is the training side: an epoch's metrics are queued and sent by a background thread, so
epochs keep advancing while the store is away. Sending is exactly-once: after a failed attempt the outbox asks
the store which epochs it already holds (the response to a write that succeeded may be what got lost) before
sending again.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
OUTAGE_ENV = "JEPA_TRACKING_OUTAGE_S"
DEFAULT_OUTAGE_S = 300.0
# The marker metric of an epoch: every epoch's report holds it, so its history says which epochs are stored.
EPOCH_MARKER = "train_loss"


class TrackingUnavailable(RuntimeError):
    """The tracking store did not answer for longer than the outage bound."""


def outage_bound_s() -> float:
    """How long a write may keep failing before it gives up: ``$JEPA_TRACKING_OUTAGE_S`` or 300 s."""
    raw = os.environ.get(OUTAGE_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_OUTAGE_S
    except ValueError:
        value = DEFAULT_OUTAGE_S
    return max(0.0, value)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the store is away or busy (retry), rather than that the request was wrong."""
    text = str(exc)
    if "database is locked" in text or "database table is locked" in text:
        return True  # sqlite: another process holds the write lock
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:
        from mlflow.exceptions import MlflowException, RestException
    except ImportError:  # pragma: no cover - mlflow is a dependency
        return False
    if isinstance(exc, RestException):  # the server answered: only its "try again later" codes are transient
        return exc.get_http_status_code() in (429, 500, 502, 503, 504) and exc.error_code in (
            "INTERNAL_ERROR",
            "TEMPORARILY_UNAVAILABLE",
            "REQUEST_LIMIT_EXCEEDED",
        )
    if isinstance(exc, MlflowException):
        # The REST client wraps connection failures (refused, reset, timed out) in this message.
        return "failed with exception" in text or "Max retries exceeded" in text
    try:
        import requests

        return isinstance(exc, (requests.ConnectionError, requests.Timeout))
    except ImportError:  # pragma: no cover - mlflow depends on requests
        return False


def _one_line(text: object, limit: int = 300) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else "unknown error")[:limit]


def unavailable(where: str, bound_s: float, exc: BaseException) -> TrackingUnavailable:
    return TrackingUnavailable(
        f"the MLflow tracking store at {where} did not answer for {bound_s:.0f} s "
        f"(${OUTAGE_ENV} sets the bound): {_one_line(exc)}"
    )


def retrying(
    fn: Callable[..., T],
    *args: Any,
    where: str = "the tracking URI",
    bound_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, retried with backoff (0.5 s doubling to 10 s) while it fails transiently,
    for at most ``bound_s`` seconds (default :func:`outage_bound_s`) after the first failure."""
    bound = outage_bound_s() if bound_s is None else bound_s
    deadline: float | None = None
    delay = 0.5
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            now = time.monotonic()
            deadline = now + bound if deadline is None else deadline
            if now >= deadline:
                raise unavailable(where, bound, exc) from exc
            sleep(min(delay, deadline - now))
            delay = min(delay * 2, 10.0)


class RetryingClient:
    """An :class:`mlflow.MlflowClient` whose every method call goes through :func:`retrying`."""

    def __init__(self, inner: Any, where: str, bound_s: float | None = None) -> None:
        self._inner, self._where, self._bound_s = inner, where, bound_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return retrying(attr, *args, where=self._where, bound_s=self._bound_s, **kwargs)

        return call


class MetricOutbox:
    """Sends a run's per-epoch metric batches in order from a background thread, exactly once each.

    ``put`` never blocks on the store. While the store is away the batches wait in memory (an epoch's batch is
    a few dozen numbers); once the store has failed for longer than the outage bound the outbox stops and
    :meth:`check` raises :class:`TrackingUnavailable` in the training thread. :meth:`pending` lists the
    batches not yet confirmed stored, so a checkpoint can carry them to a retried trial.
    """

    def __init__(self, client: Any, run_id: str, where: str, bound_s: float | None = None) -> None:
        self._client, self.run_id, self._where = client, run_id, where
        self.bound_s = outage_bound_s() if bound_s is None else bound_s
        self._queue: deque[tuple[int, list[Any], list[Any]]] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self.error: BaseException | None = None
        self.down_since: float | None = None  # time.monotonic() of the first failure of the current outage
        self.sent = 0
        self._thread = threading.Thread(target=self._loop, name=f"mlflow-outbox-{run_id[:8]}", daemon=True)
        self._thread.start()

    def put(self, epoch: int, metrics: list[Any], tags: list[Any] | None = None) -> None:
        """Queues one epoch's metrics, and tags to set in the same ``log_batch`` call."""
        self.check()
        with self._cv:
            self._queue.append((epoch, metrics, tags or []))
            self._cv.notify_all()

    def check(self) -> None:
        """Raises the error that stopped the outbox, if any."""
        if self.error is not None:
            raise self.error

    def pending(self) -> list[tuple[int, list[Any]]]:
        """``(epoch, metrics)`` of every batch not yet confirmed stored (tags are rebuilt from metrics)."""
        with self._cv:
            return [(epoch, metrics) for epoch, metrics, _ in self._queue]

    def flush(self, timeout_s: float | None = None) -> None:
        """Waits until every queued batch is stored (or the outbox failed: then raises its error)."""
        limit = self.bound_s + 30.0 if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        with self._cv:
            while self._queue and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 1.0))
        self.check()
        if self.pending():
            raise TrackingUnavailable(
                f"the MLflow tracking store at {self._where} took more than {limit:.0f} s to take "
                f"{len(self.pending())} queued epoch(s)"
            )

    def close(self) -> None:
        """Stops the thread; batches still queued stay in :meth:`pending`."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout=5)

    def _stored_epochs(self) -> int:
        history = self._client.get_metric_history(self.run_id, EPOCH_MARKER)
        return max((int(m.step) for m in history), default=0)

    def _loop(self) -> None:
        delay, retried = 0.5, False
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                epoch, metrics, tags = self._queue[0]
            try:
                # After a failure the write may have landed with only its answer lost: look before resending.
                if not (retried and self._stored_epochs() >= epoch):
                    self._client.log_batch(self.run_id, metrics=metrics, tags=tags)
            except Exception as exc:  # noqa: BLE001 - anything but a transient failure stops the outbox
                now = time.monotonic()
                if not is_transient(exc):
                    self._fail(exc)
                    return
                self.down_since = now if self.down_since is None else self.down_since
                if now - self.down_since >= self.bound_s:
                    self._fail(unavailable(self._where, self.bound_s, exc))
                    return
                retried = True
                with self._cv:  # a close() ends the wait early
                    self._cv.wait(min(delay, self.bound_s))
                delay = min(delay * 2, 10.0)
                continue
            delay, retried, self.down_since = 0.5, False, None
            with self._cv:
                self._queue.popleft()
                self.sent += 1
                self._cv.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cv:
            self.error = exc
            self._cv.notify_all()
