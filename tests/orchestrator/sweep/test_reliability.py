"""Reliability, with real processes: killed trial workers, a killed driver, a diverging trial, concurrent
writers to the default sqlite store, and secrets in the environment.

Trials train on sklearn's digits (bundled). Set ``JEPA_RELIABILITY_FIGURES=path.json`` to keep the measured
kill-to-progress times.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.orchestrator.conftest import _alive, _with_descendants, run_sweep

SWEEP = """\
name: {name}
method: grid
metric: {{name: probe_acc, goal: maximize}}
parameters:
  {param}: {{values: {values}}}
seeds: {seeds}
max_failures: {max_failures}
trainer:
  overrides:
    data.name: digits
    data.image_size: 16
    model.patch_size: 4
    model.embed_dim: 32
    model.depth: 1
    model.num_heads: 2
    predictor.depth: 1
    predictor.embed_dim: 32
    predictor.num_heads: 2
    train.batch_size: 32
    train.epochs: 50
    eval.train_subset: 400
    eval.test_subset: 200
    eval.every: 0
smoke:
  overrides: {{train.epochs: {epochs}, train.device: cpu{extra}}}
  resources: {{cpu: {cpu}, gpu: 0}}
  max_concurrent_trials: {concurrency}
"""


def write_sweep(tmp_path: Path, name: str, **fields: Any) -> Path:
    values = {
        "param": "mask.ratio",
        "values": [0.3, 0.5],
        "seeds": [0],
        "max_failures": 1,
        "epochs": 6,
        "extra": "",
        "cpu": 1,
        "concurrency": 2,
        "name": name,
        **fields,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(SWEEP.format(**values))
    return path


def record_figure(key: str, value: Any) -> None:
    """Adds a measured figure to ``$JEPA_RELIABILITY_FIGURES`` (a JSON object), when that is set."""
    target = os.environ.get("JEPA_RELIABILITY_FIGURES")
    if not target:
        return
    path = Path(target)
    figures = json.loads(path.read_text()) if path.is_file() else {}
    figures[key] = value
    path.write_text(json.dumps(figures, indent=1))


class Driver:
    """``python -m orchestrator.sweep`` in its own process group, as a shell runs a job."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.log = cwd / f"driver-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.sweep", *args],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 240) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            assert self.proc.poll() is None, (
                f"the sweep ended while waiting for {what}:\n{self.text()[-3000:]}"
            )
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.text()[-3000:]}"
            time.sleep(0.1)

    def workers(self) -> list[int]:
        """Pids of the Ray workers running a trial (their process title is ``ray::ImplicitFunc.train``)."""
        pids = []
        for pid in _with_descendants([self.proc.pid]):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::ImplicitFunc") and _alive(pid):
                pids.append(pid)
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


class Store:
    """Reads the sweep's sqlite MLflow store while the sweep writes it."""

    def __init__(self, db: Path, experiment: str) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(f"sqlite:///{db}")
        self.experiment = experiment

    def runs(self, role: str = "trial") -> list[Any]:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is None:
            return []
        return [
            r for r in self.client.search_runs([exp.experiment_id]) if r.data.tags.get("jepa.role") == role
        ]

    def steps(self, run_id: str, key: str = "train_loss") -> list[int]:
        return sorted(int(m.step) for m in self.client.get_metric_history(run_id, key))

    def history(self, run_id: str, key: str = "train_loss") -> list[Any]:
        return sorted(self.client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))

    def epochs_logged(self) -> dict[str, int]:
        return {r.info.run_id: max(self.steps(r.info.run_id), default=0) for r in self.runs()}


def resumed_after(store: Store, run: Any, since: float) -> float:
    """Seconds from ``since`` (a kill, a restart) to the trial's first epoch logged after it."""
    after = [m.timestamp / 1000 for m in store.history(run.info.run_id) if m.timestamp / 1000 > since]
    assert after, "no epoch was logged after the kill"
    return min(after) - since


def assert_clean_history(store: Store, run: Any, epochs: int) -> None:
    """Every per-epoch metric holds each epoch exactly once: no gap, no duplicate step."""
    for key in ("train_loss", "lr", "img_per_s", "epoch_time_s"):
        assert store.steps(run.info.run_id, key) == list(range(1, epochs + 1)), (key, run.data.tags)


@pytest.mark.slow
def test_killed_trial_workers_are_retried_from_their_checkpoints(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    epochs = 8
    sweep = write_sweep(tmp_path, "kill_worker", epochs=epochs)
    driver = Driver([str(sweep), "--smoke", "--no-report"], tmp_path, proc_env)
    try:
        driver.wait_for("the MLflow parent run", lambda: "MLflow parent run" in driver.text())
        store = Store(tmp_path / "mlflow.db", "kill_worker")
        # Both trials have checkpointed two epochs: kill each worker in the middle of its third epoch.
        driver.wait_for(
            "two epochs of each trial",
            lambda: len(logged := store.epochs_logged()) == 2 and min(logged.values()) >= 2,
        )
        epoch_s = max(r.data.metrics["epoch_time_s"] for r in store.runs())
        time.sleep(epoch_s / 2)
        workers = driver.wait_for("the trial workers", lambda: len(w := driver.workers()) == 2 and w)
        logged_at_kill = store.epochs_logged()
        killed_at = time.time()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        # An epoch may have been logged between the read above and the kill; a retry needs seconds to start.
        logged_after_kill = store.epochs_logged()
        assert driver.proc.wait(timeout=300) == 0, driver.text()[-3000:]
    finally:
        driver.stop()

    out = driver.text()
    assert out.count("retrying: ") == 2 and "Traceback" not in out, out[-3000:]
    trials = store.runs()
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    lost = []
    for run in trials:
        assert_clean_history(store, run, epochs)
        resumed_from = int(run.data.tags["jepa.resumed_from_epoch"])
        # From its last checkpoint: the epoch in MLflow at the kill, or the one before if its report was cut.
        assert logged_at_kill[run.info.run_id] - 1 <= resumed_from <= logged_after_kill[run.info.run_id]
        assert "jepa.failure_reason" not in run.data.tags
        lost.append(resumed_after(store, run, killed_at))
    record_figure("worker_kills", len(workers))
    record_figure("worker_kill_to_progress_s", sorted(round(s, 1) for s in lost))


@pytest.mark.slow
def test_killed_driver_resumes_without_rerunning_or_losing_anything(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    epochs = 8
    sweep = write_sweep(tmp_path, "kill_driver", values=[0.3, 0.4, 0.5], epochs=epochs, concurrency=1)
    driver = Driver([str(sweep), "--smoke"], tmp_path, proc_env)
    try:
        driver.wait_for("the MLflow parent run", lambda: "MLflow parent run" in driver.text())
        store = Store(tmp_path / "mlflow.db", "kill_driver")

        def one_finished_one_in_flight() -> bool:
            runs = store.runs()
            done = [r for r in runs if r.info.status == "FINISHED"]
            busy = [
                r
                for r in runs
                if r.info.status == "RUNNING" and max(store.steps(r.info.run_id), default=0) >= 2
            ]
            return len(done) == 1 and len(busy) == 1

        driver.wait_for("one finished trial and one with two epochs", one_finished_one_in_flight)
        time.sleep(max(r.data.metrics.get("epoch_time_s", 0) for r in store.runs()) / 2)
        tree = _with_descendants([driver.proc.pid])
        os.killpg(driver.proc.pid, signal.SIGKILL)  # the terminal, or the machine, died
        driver.proc.wait(timeout=30)
        # Nothing of the old sweep keeps training: Ray's processes and the trial workers end with the driver.
        deadline = time.monotonic() + 60
        while any(_alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in tree if _alive(p)]
    finally:
        driver.stop()
    before = {r.info.run_id: r for r in store.runs()}
    finished_before = {k: r.info.end_time for k, r in before.items() if r.info.status == "FINISHED"}
    in_flight = next(k for k, r in before.items() if r.info.status == "RUNNING")

    again = run_sweep([str(sweep), "--smoke"], cwd=tmp_path, env=proc_env)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
    resume_started = time.time()
    resumed = run_sweep([str(sweep), "--smoke", "--resume"], cwd=tmp_path, env=proc_env, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    parents = store.runs("sweep")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # the parent run was reused
    trials = store.runs()
    assert len(trials) == 3 and all(r.info.status == "FINISHED" for r in trials)
    assert set(before) <= {r.info.run_id for r in trials}  # the in-flight trial continued its own run
    for run in trials:
        assert_clean_history(store, run, epochs)
        if run.info.run_id in finished_before:
            assert run.info.end_time == finished_before[run.info.run_id]  # not rerun
    flight = next(r for r in trials if r.info.run_id == in_flight)
    assert 2 <= int(flight.data.tags["jepa.resumed_from_epoch"]) < epochs  # from its checkpoint
    report = next(line for line in resumed.stdout.splitlines() if line.startswith("report: "))[8:]
    table = (Path(report) / "trials.csv").read_text().splitlines()
    assert len(table) == 4 and sum(",FINISHED," in row for row in table[1:]) == 3, table
    record_figure("driver_kills", 1)
    # The killed worker may log one more epoch before it notices; the cost of a restart is what counts.
    record_figure("driver_resume_to_progress_s", round(resumed_after(store, flight, resume_started), 1))


SECRETS = {
    "MLFLOW_TRACKING_PASSWORD": "sekrit-mlflow-7f3a",
    "AWS_SECRET_ACCESS_KEY": "sekrit-aws-91bc",
    "HF_TOKEN": "sekrit-hf-22de",
    "JEPA_TEST_API_KEY": "sekrit-api-5e10",
}


@pytest.mark.slow
def test_diverging_trial_fails_alone_and_secrets_are_never_logged(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    from mlflow import MlflowClient

    sweep = write_sweep(tmp_path, "diverge", param="optim.lr", values=[0.001, 1.0e30], epochs=3)
    proc = run_sweep([str(sweep), "--smoke"], cwd=tmp_path, env={**proc_env, **SECRETS})
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "failed (diverged): optim.lr=1e+30 seed=0" in proc.stdout and "1 failed" in proc.stdout
    store = Store(tmp_path / "mlflow.db", "diverge")
    by_lr = {r.data.params["optim.lr"]: r for r in store.runs()}
    assert by_lr["0.001"].info.status == "FINISHED" and store.steps(by_lr["0.001"].info.run_id) == [1, 2, 3]
    bad = by_lr["1e+30"]
    assert bad.info.status == "FAILED"
    reason = bad.data.tags["jepa.failure_reason"]
    assert reason.startswith("DivergenceError: loss diverged (nan) at epoch 1, step "), reason
    assert store.runs("sweep")[0].info.status == "FAILED"

    report = Path(next(line for line in proc.stdout.splitlines() if line.startswith("report: "))[8:])
    failed_section = (report / "report.md").read_text().split("## Failed and collapsed trials")[1]
    assert "optim.lr=1e+30" in failed_section and "loss diverged" in failed_section

    # No secret from the environment reached a param, a tag, an artifact, the report or the output.
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    texts = [proc.stdout, proc.stderr]
    for run in [*store.runs(), *store.runs("sweep")]:
        texts += [json.dumps(run.data.params), json.dumps(run.data.tags)]
        for art in client.list_artifacts(run.info.run_id):
            if not art.is_dir:
                texts.append(
                    Path(client.download_artifacts(run.info.run_id, art.path, str(tmp_path))).read_text()
                )
    texts += [p.read_text() for p in report.iterdir() if p.suffix in (".md", ".html", ".csv")]
    assert len(texts) > 10
    leaked = [name for name, value in SECRETS.items() if any(value in t for t in texts)]
    assert not leaked


WRITER = """\
import sys
from orchestrator.tracking import runs as tracking
uri, exp, index, epochs, keys = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
run = tracking.TrialRun.open(
    uri, exp, run_id=None, trial_id=f"stress_{index:05d}", run_name=f"writer {index}",
    tags={}, params={"index": index}, config_yaml="", system_metrics=True,
)
for epoch in range(1, epochs + 1):
    run.log_epoch(epoch, {f"m{k}": float(epoch * 100 + k) for k in range(keys)})
run.close("FINISHED")
"""


def test_eight_writers_to_one_sqlite_store_lose_no_metric_point(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    """The trial-side logging path, from 8 processes at once, as fast as they can write."""
    from orchestrator.tracking import runs as tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = tracking.get_or_create_experiment(uri, "stress")
    epochs, keys = 150, 10
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, uri, exp, str(i), str(epochs), str(keys)],
            env=proc_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    errors = [w.communicate(timeout=300)[1] for w in writers]
    assert [w.returncode for w in writers] == [0] * 8, errors
    client = tracking.client(uri)
    runs = client.search_runs([exp])
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    points = 0
    for run in runs:
        for k in range(keys):
            history = client.get_metric_history(run.info.run_id, f"m{k}")
            assert sorted((int(m.step), m.value) for m in history) == [
                (e, float(e * 100 + k)) for e in range(1, epochs + 1)
            ]
            points += len(history)
    assert points == 8 * epochs * keys


@pytest.mark.slow
def test_eight_concurrent_trials_log_every_point_to_default_sqlite(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    epochs = 30
    sweep = write_sweep(
        tmp_path,
        "eight",
        values=[0.3, 0.4, 0.5, 0.6],
        seeds=[0, 1],
        epochs=epochs,
        extra=", train.steps_per_epoch: 2",
        cpu=0.25,
        concurrency=8,
    )
    proc = run_sweep([str(sweep), "--smoke", "--no-report"], cwd=tmp_path, env=proc_env, timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    store = Store(tmp_path / "mlflow.db", "eight")
    trials = store.runs()
    assert len(trials) == 8 and all(r.info.status == "FINISHED" for r in trials)
    # How many trials were logging at the same moment (from their runs' start and end times).
    edges = sorted([(r.info.start_time, 1) for r in trials] + [(r.info.end_time, -1) for r in trials])
    overlap = max(sum(step for _, step in edges[: i + 1]) for i in range(len(edges)))
    assert overlap >= 4
    points = expected = 0
    for run in trials:
        assert_clean_history(store, run, epochs)
        for key in run.data.metrics:
            if key.startswith("system/"):
                continue
            steps = store.steps(run.info.run_id, key)
            # Training metrics every epoch; evaluation metrics at the last epoch (eval.every: 0).
            assert steps in (list(range(1, epochs + 1)), [epochs]), (key, steps)
            points += len(steps)
            expected += len(steps) if steps == [epochs] else epochs
    assert points == expected >= 8 * epochs * 5
    record_figure("concurrent_trials_overlap", overlap)
    record_figure("concurrent_trials_metric_points", points)


def test_trial_run__only_a_finished_run_counts_as_done(tmp_path: Path) -> None:
    """What a restored trial meets when it opens its run: stale Tune state must not rerun a finished trial."""
    from orchestrator.tracking import runs as tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = tracking.get_or_create_experiment(uri, "unit")

    def open_run(run_id: str | None, trial_id: str = "abcde_00001") -> tracking.TrialRun:
        return tracking.TrialRun.open(
            uri,
            exp,
            run_id=run_id,
            trial_id=trial_id,
            run_name="t",
            tags={},
            params={},
            config_yaml="",
            system_metrics=False,
        )

    run = open_run(None)
    assert run.final is None and not run.reopened  # never started: a new run
    run.log_epoch(1, {"train_loss": 0.9})
    run.log_epoch(2, {"train_loss": 0.7, "probe_acc": 0.6})
    run.flush()  # epochs are sent from a background outbox
    assert open_run(run.run_id).final is None  # still running
    tracking.set_run_status(uri, run.run_id, "KILLED")
    again = open_run(None)
    assert again.final is None and again.reopened  # interrupted: resume it
    tracking.set_run_status(uri, run.run_id, "FINISHED")
    done = open_run(None)
    assert done.final == {"train_loss": 0.7, "probe_acc": 0.6, "epoch": 2.0}
    assert open_run(run.run_id, "other_00000").final == done.final
    assert tracking.client(uri).get_run(run.run_id).info.status == "FINISHED"  # left closed


@pytest.mark.slow
def test_killed_optuna_sweep_resumes_with_every_suggestion_on_every_seed(
    tmp_path: Path, proc_env: dict[str, str]
) -> None:
    text = (
        write_sweep(tmp_path, "kill_optuna", epochs=6)
        .read_text()
        .replace("method: grid", "method: optuna\nnum_samples: 3")
        .replace("{values: [0.3, 0.5]}", "{distribution: uniform, min: 0.2, max: 0.6}")
        .replace("seeds: [0]", "seeds: [0, 1]")
    )
    sweep = tmp_path / "kill_optuna.yaml"
    sweep.write_text(text)
    driver = Driver([str(sweep), "--smoke", "--no-report"], tmp_path, proc_env)
    try:
        # Kill once the first suggestion has finished on both seeds and the second is under way.
        driver.wait_for("two finished trials", lambda: driver.text().count("finished: ") >= 2)
        driver.wait_for("a trial in flight", lambda: len(driver.workers()) >= 1)
        time.sleep(1.0)
        # Optuna's INFO lines ("A new study created in memory ...") stay out of the progress display.
        assert "A new study created" not in driver.text() and "[I " not in driver.text(), driver.text()[:2000]
        os.killpg(driver.proc.pid, signal.SIGKILL)
        driver.proc.wait(timeout=30)
    finally:
        driver.stop()
    resumed = run_sweep(
        [str(sweep), "--smoke", "--no-report", "--resume"], cwd=tmp_path, env=proc_env, timeout=300
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    store = Store(tmp_path / "mlflow.db", "kill_optuna")
    trials = store.runs()
    assert len(trials) == 6 and all(r.info.status == "FINISHED" for r in trials)
    seeds_by_value: dict[str, list[str]] = {}
    for run in trials:
        seeds_by_value.setdefault(run.data.params["mask.ratio"], []).append(run.data.tags["jepa.seed"])
        assert_clean_history(store, run, 6)
    # Three suggestions, each trained once on each seed: the Repeater's grouping survived the restore.
    assert sorted(sorted(s) for s in seeds_by_value.values()) == [["0", "1"]] * 3
