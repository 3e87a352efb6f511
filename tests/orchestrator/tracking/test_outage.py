"""A tracking server that goes away for 30 s in the middle of a sweep, with real processes.

The trials keep training while it is down (their epoch metrics wait in each trial's outbox), and afterwards
every epoch of every trial is in MLflow exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.orchestrator.conftest import BIN, free_port
from tests.orchestrator.sweep.test_reliability import (
    Driver,
    Store,
    assert_clean_history,
    record_figure,
    write_sweep,
)


class Server:
    """``mlflow server`` on a fixed loopback port, to stop and start again on the same store."""

    def __init__(self, db: Path, cwd: Path, env: dict[str, str]) -> None:
        self.db, self.cwd, self.port = db, cwd, free_port()
        self.env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.cwd / f"mlflow_server_{self.starts}.log").open("w")
        cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{self.db}"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        cmd += ["--artifacts-destination", str(self.cwd / "mlartifacts")]
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.cwd / log.name).read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise AssertionError("mlflow server did not answer /health within 90 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self.proc = None


@pytest.mark.slow
def test_tracking_server_away_for_30_s__training_goes_on_and_every_epoch_arrives_once(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    epochs, outage_s = 40, 30.0
    server = Server(tmp_path / "server.db", tmp_path, proc_env)
    server.start()
    sweep = write_sweep(tmp_path, "outage", epochs=epochs, extra=", train.steps_per_epoch: 3")
    args = [str(sweep), "--smoke", "--no-report", "--tracking-uri", server.url]
    driver = Driver(args, tmp_path, proc_env)
    store = Store(
        tmp_path / "server.db", "outage"
    )  # read straight from the file: works while the server is down
    try:
        driver.wait_for(
            "an epoch of each trial",
            lambda: len(done := store.epochs_logged()) == 2 and min(done.values()) >= 1,
        )
        stopped_at = time.time()
        server.stop()
        time.sleep(outage_s)
        at_restart = store.epochs_logged()
        assert driver.proc.poll() is None, driver.text()[-3000:]  # the sweep waited for the store, alive
        server.start()
        back_at = time.time()
        assert driver.proc.wait(timeout=400) == 0, driver.text()[-3000:]
    finally:
        driver.stop()
        server.stop()

    out = driver.text()
    assert "Traceback" not in out and "FAILED" not in out, out[-3000:]
    trials = store.runs()
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    for run in trials:
        assert_clean_history(store, run, epochs)  # each epoch exactly once, none missing
    # A metric's timestamp is when its epoch ended, not when the store took it.
    ended_while_down = sorted(
        m.step
        for r in trials
        for m in store.history(r.info.run_id)
        if stopped_at < m.timestamp / 1000 < back_at
    )
    assert ended_while_down, "no epoch ended while the server was down: training waited for it"
    assert max(at_restart.values()) < epochs  # epochs reached the store only after it came back
    record_figure("tracking_outage_s", round(back_at - stopped_at, 1))
    record_figure("epochs_trained_while_tracking_down", len(ended_while_down))


@pytest.mark.slow
def test_tracking_server_away_past_the_bound__trials_fail_saying_so_and_resume_completes_them(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    from tests.orchestrator.conftest import run_sweep

    epochs = 30
    env = {**proc_env, "JEPA_TRACKING_OUTAGE_S": "8"}
    server = Server(tmp_path / "server.db", tmp_path, env)
    server.start()
    sweep = write_sweep(tmp_path, "gone", epochs=epochs, extra=", train.steps_per_epoch: 3")
    args = [str(sweep), "--smoke", "--no-report", "--tracking-uri", server.url]
    driver = Driver(args, tmp_path, env)
    store = Store(tmp_path / "server.db", "gone")
    try:
        driver.wait_for(
            "an epoch of each trial",
            lambda: len(done := store.epochs_logged()) == 2 and min(done.values()) >= 1,
        )
        server.stop()
        assert driver.proc.wait(timeout=300) == 1, driver.text()[-3000:]
    finally:
        driver.stop()
    out = driver.text()
    assert "did not answer for 8 s" in out and "--resume" in out and "Traceback" not in out, out[-3000:]

    server.start()
    try:
        resumed = run_sweep([*args, "--resume"], cwd=tmp_path, env=env, timeout=300)
    finally:
        server.stop()
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = store.runs()
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    for run in trials:
        assert_clean_history(store, run, epochs)
        assert "jepa.failure_reason" not in run.data.tags
