"""End to end, with real components: ``--smoke`` sweeps on real Ray clusters, read back from MLflow servers.

Trials train on sklearn's digits (bundled, 8x8): these tests check the plumbing, not the learning.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.sweep.overhead import parse_overhead_line
from orchestrator.tracking import history
from tests.orchestrator.conftest import MlflowRest, params, run_sweep, tags

TINY_SWEEP = """\
name: {name}
method: grid
metric: {{name: probe_acc, goal: maximize}}
parameters:
  mask.ratio: {{values: {values}}}
seeds: {seeds}
max_failures: 0
trainer:
  overrides:
    data.name: digits
    data.image_size: 8
    model.patch_size: 2
    model.embed_dim: 32
    model.depth: 1
    model.num_heads: 2
    predictor.depth: 1
    predictor.embed_dim: 32
    predictor.num_heads: 2
    train.batch_size: 64
    train.epochs: 20
    eval.train_subset: 500
    eval.test_subset: 200
    eval.every: 0
smoke:
  overrides: {{train.epochs: {epochs}, train.device: cpu}}
  resources: {{cpu: 1, gpu: 0}}
  max_concurrent_trials: {concurrency}
"""
DESCRIPTION = "Does the mask ratio change what I-JEPA learns on digits?"


def write_sweep(
    tmp_path: Path, name: str, values: list[float], seeds: list[int], epochs: int = 2, concurrency: int = 2
) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        TINY_SWEEP.format(name=name, values=values, seeds=seeds, epochs=epochs, concurrency=concurrency)
    )
    return path


def last_lines(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """The closing lines of a sweep, by their label."""
    out: dict[str, str] = {}
    for line in proc.stdout.strip().splitlines()[-8:]:
        if line.startswith(("report: ", "parent run: ")):
            label, _, value = line.partition(": ")
            out[label] = value
        elif line.startswith("mlflow ui "):
            out["ui"] = line
        elif line.startswith("trials with their charts: "):
            out["trials"] = line.partition(": ")[2]
        elif line.startswith("http://"):
            out["url"] = line
        elif line.startswith("overhead: "):
            out["overhead"] = line
    return out


def children_of(runs: list[dict], parent_id: str) -> list[dict]:
    return [r for r in runs if tags(r).get("mlflow.parentRunId") == parent_id]


@pytest.mark.slow
def test_sweep__smoke_on_local_ray_reads_back_through_mlflow_server(
    tmp_path: Path, proc_env: dict[str, str], mlflow_server
) -> None:
    sweep = write_sweep(tmp_path, "e2e_local", [0.25, 0.4, 0.55], [0])
    sweep.write_text(sweep.read_text().replace("method: grid", f"description: {DESCRIPTION}\nmethod: grid"))
    proc = run_sweep([str(sweep), "--smoke"], cwd=tmp_path, env=proc_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    closing = last_lines(proc)
    # The sweep's first line is its own (the profile it runs), not Ray's WARNING that it turned token
    # authentication on: the local cluster names that default explicitly.
    assert proc.stdout.startswith("profile smoke (--smoke): "), proc.stdout[:300]
    assert "WARNING" not in proc.stderr, proc.stderr[:1000]
    db = tmp_path / "mlflow.db"
    assert closing["ui"] == f"mlflow ui --backend-store-uri sqlite:///{db} --host 127.0.0.1 --port 5000"
    assert "finished: mask.ratio=0.4 seed=0" in proc.stdout  # the live progress display
    # Time outside the trials: from the trials' own clocks, so it is positive and shorter than the sweep.
    found = parse_overhead_line(closing["overhead"])
    assert found, closing["overhead"]
    assert 0 < found[0] < 600 and 0 <= found[1] < 600
    # Tune's CSV and JSON trial logs are kept; its TensorBoard logger (which imports torch into the driver)
    # is not added.
    trial_dirs = sorted((tmp_path / "ray_results").glob("*/run_trial_*"))
    assert len(trial_dirs) == 3
    for folder in trial_dirs:
        assert (folder / "progress.csv").is_file() and (folder / "result.json").read_text().strip()
        assert not list(folder.glob("events.out.tfevents*"))
    if not closing["report"].startswith("not written"):
        assert Path(closing["report"]).is_dir() and Path(closing["report"]).is_relative_to(
            tmp_path / "reports"
        )

    rest = MlflowRest(mlflow_server(db))
    exp_id = rest.experiment_id("e2e_local")
    assert closing["url"] == f"http://127.0.0.1:5000/#/experiments/{exp_id}/runs"
    runs = rest.runs(exp_id)
    parents = [r for r in runs if tags(r).get("jepa.role") == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    parent_id = parent["info"]["run_id"]
    assert closing["parent run"] == parent_id and parent["info"]["status"] == "FINISHED"
    ptags = tags(parent)
    assert ptags["jepa.sweep"] == "e2e_local" and ptags["jepa.swept_params"] == '["mask.ratio"]'
    assert ptags["jepa.metric"] == "probe_acc" and ptags["jepa.metric_goal"] == "maximize"
    assert {"jepa.git_sha", "jepa.host", "jepa.device"} <= set(ptags)
    # The profile it ran, and why, on the parent run as in the sweep's first line.
    assert (ptags["jepa.profile"], ptags["jepa.profile_reason"], ptags["jepa.smoke"]) == (
        "smoke",
        "--smoke",
        "true",
    )
    assert proc.stdout.splitlines()[0].startswith("profile smoke (--smoke): the sweep file's smoke section")
    assert {"sweep.yaml", "trials.json", "trials.txt"} <= set(rest.artifacts(parent_id))

    children = children_of(runs, parent_id)
    assert len(children) == 3 and len(runs) == 4
    assert all(c["info"]["status"] == "FINISHED" for c in children)
    assert sorted(float(params(c)["mask.ratio"]) for c in children) == [0.25, 0.4, 0.55]
    for child in children:
        ctags, cparams = tags(child), params(child)
        assert ctags["jepa.role"] == "trial" and ctags["jepa.seed"] == "0" == cparams["train.seed"]
        assert ctags["jepa.device"] == "cpu" and ctags["jepa.torch_version"] and ctags["jepa.ray_version"]
        assert len(ctags["jepa.config_id"]) == 10
        # Params are the full resolved config: smoke overrides and --set included.
        assert cparams["data.name"] == "digits" and cparams["train.epochs"] == "2" and len(cparams) > 40
        assert [s for s, _ in rest.history(child["info"]["run_id"], "train_loss")] == [1, 2]
        assert [s for s, _ in rest.history(child["info"]["run_id"], "probe_acc")] == [2]
        # The report's curves, sent with each epoch's metrics: the same points as the metric histories.
        curves = history.decode(ctags[history.HISTORY_TAG])
        logged = rest.history(child["info"]["run_id"], "train_loss")
        assert curves is not None and [s for s, _ in curves["train_loss"]] == [s for s, _ in logged]
        assert [v for _, v in curves["train_loss"]] == pytest.approx([v for _, v in logged], rel=1e-6)
        assert [s for s, _ in curves["probe_acc"]] == [2]
        assert "config.yaml" in rest.artifacts(child["info"]["run_id"])
    answer_on_parent(db, parent_id, children)
    trials_in_browser(closing["trials"].replace("http://127.0.0.1:5000", rest.url), children, tmp_path)


def answer_on_parent(db: Path, parent_id: str, children: list[dict]) -> None:
    """The parent run carries the sweep's answer, each trial its dataset and commit (read by MlflowClient)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    parent = client.get_run(parent_id)

    # One seed per configuration: the best configuration's mean is its one trial's validation figure. On a
    # 500-image validation split two settings can tie; the parent names one of the tied, consistently.
    def acc(child: dict) -> float:
        return float(next(m["value"] for m in child["data"]["metrics"] if m["key"] == "probe_acc"))

    top = max(acc(c) for c in children)
    tied = {c["info"]["run_name"]: c for c in children if acc(c) == top}
    metrics, ptags = parent.data.metrics, parent.data.tags
    label = ptags["jepa.best_config"]  # the configuration: the run name less its seed
    assert f"{label} seed=0" in tied, (label, sorted(tied))
    best_run = client.get_run(tied[f"{label} seed=0"]["info"]["run_id"])
    assert metrics["best_probe_acc"] == pytest.approx(best_run.data.metrics["probe_acc"])
    assert metrics["best_test_probe_acc"] == pytest.approx(best_run.data.metrics["test_probe_acc"])
    assert label == f"mask.ratio={best_run.data.params['mask.ratio']}"
    assert ptags["jepa.best.mask.ratio"] == best_run.data.params["mask.ratio"]
    assert ptags["jepa.verdict"].startswith(f"Best configuration `{label}`")
    assert ptags["jepa.verdict.distinguishable"] in ("true", "false")
    note = ptags["mlflow.note.content"]
    assert note.startswith(DESCRIPTION) and f"**Best configuration:** `{label}`" in note
    assert client.get_experiment(parent.info.experiment_id).tags["mlflow.note.content"] == DESCRIPTION
    # MlflowClient.load_table searches the process-global tracking URI, not its own: read the file itself.
    assert {"path": "leaderboard.json", "type": "table"} in json.loads(ptags["mlflow.loggedArtifacts"])
    table = json.loads(
        Path(client.download_artifacts(parent_id, "leaderboard.json", str(db.parent))).read_text()
    )
    board = pd.DataFrame(table["data"], columns=table["columns"])
    assert len(board) == 3 and list(board["rank"]) == [1, 2, 3]
    assert board["mask.ratio"].iloc[0] == pytest.approx(float(best_run.data.params["mask.ratio"]))
    digests = set()
    for child in children:
        run = client.get_run(child["info"]["run_id"])
        assert run.data.tags["mlflow.source.name"] == "orchestrator.sweep"
        assert run.data.tags["jepa.git_sha"].startswith(
            run.data.tags.get("mlflow.source.git.commit", "unknown")
        )
        (item,) = run.inputs.dataset_inputs
        assert (
            item.dataset.name == "digits"
            and {t.key: t.value for t in item.tags}["mlflow.data.context"] == "train"
        )
        sizes = json.loads(item.dataset.profile)
        assert (
            sizes["test"] == 200
            and sizes["probe_train"] == 500
            and sizes["pretrain"] > sizes["validation"] > 0
        )
        digests.add(item.dataset.digest)
    assert len(digests) == 1  # the same images for every trial: only the mask ratio differs


def trials_in_browser(url: str, children: list[dict], tmp_path: Path) -> None:
    """The printed trials URL in headless chromium, as a user opens it: every trial listed, charts drawn."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, (
        "chromium is not installed (apt-get install chromium; .ci/run installs it): the UI check needs it"
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    for attempt in range(
        3
    ):  # the page fetches runs, then each chart's history: a slow machine may need longer
        proc = subprocess.run(
            [chromium, *flags, f"--user-data-dir={tmp_path / f'chromium{attempt}'}", "--window-size=1400,900",
             f"--virtual-time-budget={30000 * (attempt + 1)}", "--dump-dom", url],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        page = proc.stdout
        names = [c["info"]["run_name"] for c in children]
        if all(n in page for n in names) and "js-plotly-plot" in page:
            break
    missing = [n for n in names if n not in page]
    assert not missing, f"trials not listed at {url}: {missing}\n{proc.stderr[-2000:]}"
    assert "js-plotly-plot" in page, f"no metric chart rendered at {url}"


@pytest.mark.slow
def test_sweep__two_node_cluster_runs_trials_on_both_nodes(
    tmp_path: Path, ray_cluster, mlflow_server
) -> None:
    address, env = ray_cluster
    url = mlflow_server(tmp_path / "server.db")
    sweep = write_sweep(tmp_path, "e2e_cluster", [0.3, 0.5], [0, 1], epochs=3)
    proc = run_sweep(
        [
            str(sweep),
            "--smoke",
            "--address",
            address,
            "--tracking-uri",
            url,
            "--no-report",
            "--storage-path",
            str(tmp_path / "shared_results"),
        ],
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    closing = last_lines(proc)
    rest = MlflowRest(url)
    exp_id = rest.experiment_id("e2e_cluster")
    assert closing["url"] == f"{url}/#/experiments/{exp_id}/runs"
    children = children_of(rest.runs(exp_id), closing["parent run"])
    assert len(children) == 4 and all(c["info"]["status"] == "FINISHED" for c in children)
    assert len({tags(c)["jepa.node_id"] for c in children}) == 2  # both nodes trained
    assert {(params(c)["mask.ratio"], params(c)["train.seed"]) for c in children} == {
        ("0.3", "0"),
        ("0.3", "1"),
        ("0.5", "0"),
        ("0.5", "1"),
    }
    for child in children:
        assert [s for s, _ in rest.history(child["info"]["run_id"], "train_loss")] == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_sweep__interrupted_sweep_finishes_with_resume(
    tmp_path: Path, proc_env: dict[str, str], sig: signal.Signals
) -> None:
    from mlflow import MlflowClient

    epochs = 6
    sweep = write_sweep(tmp_path, "e2e_resume", [0.3, 0.4, 0.5], [0], epochs=epochs, concurrency=1)
    log = tmp_path / "first.log"
    with log.open("w") as out:
        driver = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.sweep", str(sweep), "--smoke", "--no-report"],
            cwd=tmp_path,
            env=proc_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    results = tmp_path / "ray_results"

    def driver_holds_a_second_trial_checkpoint() -> bool:
        # A worker persists a checkpoint folder before the driver has taken in its result, and a checkpoint
        # the driver has not registered is not in the state --resume reads. With num_to_keep=1 the driver
        # deletes checkpoint_000000 when it registers the next one: its absence beside a later one proves
        # the driver holds a checkpoint of that trial.
        found = [p.name for p in results.glob("*/run_trial_*_00001_*/checkpoint_*")]
        return bool(found) and "checkpoint_000000" not in found

    try:
        # Interrupt once the first trial has finished and the driver holds a checkpoint of the second.
        deadline = time.monotonic() + 240
        while not (log.read_text().count("finished: ") >= 1 and driver_holds_a_second_trial_checkpoint()):
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        os.kill(driver.pid, sig)  # what Ctrl-C does, or `kill`, or a batch system's time limit
        assert driver.wait(timeout=120) == 130, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert "--resume" in log.read_text()

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp_id = client.get_experiment_by_name("e2e_resume").experiment_id
    before = {
        r.info.run_id: r for r in client.search_runs([exp_id]) if r.data.tags.get("jepa.role") == "trial"
    }
    finished_before = {k: r.info.end_time for k, r in before.items() if r.info.status == "FINISHED"}
    assert len(finished_before) >= 1

    again = run_sweep([str(sweep), "--smoke", "--no-report"], cwd=tmp_path, env=proc_env)
    assert again.returncode == 2 and "--resume" in again.stderr  # says how to resume, starts nothing
    resumed = run_sweep([str(sweep), "--smoke", "--no-report", "--resume"], cwd=tmp_path, env=proc_env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    runs = client.search_runs([exp_id])
    parents = [r for r in runs if r.data.tags.get("jepa.role") == "sweep"]
    trials = [r for r in runs if r.data.tags.get("jepa.role") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(trials) == 3 and all(r.info.status == "FINISHED" for r in trials)
    assert {r.info.run_id for r in trials} >= set(before)  # the interrupted trial continued its own run
    resumed_from = [
        int(r.data.tags["jepa.resumed_from_epoch"])
        for r in trials
        if "jepa.resumed_from_epoch" in r.data.tags
    ]
    assert len(resumed_from) == 1 and 1 <= resumed_from[0] < epochs  # from its checkpoint, not from scratch
    for run in trials:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
        assert sorted(steps) == list(range(1, epochs + 1)), steps  # no epoch lost or logged twice
        curves = history.decode(run.data.tags.get(history.HISTORY_TAG))  # restored across the resume
        assert curves is not None and [s for s, _ in curves["train_loss"]] == list(range(1, epochs + 1))
        if run.info.run_id in finished_before:
            assert run.info.end_time == finished_before[run.info.run_id]  # finished trials were not rerun


@pytest.mark.slow
def test_sweep__failing_trial_is_recorded_and_exits_1(tmp_path: Path, proc_env: dict[str, str]) -> None:
    from mlflow import MlflowClient

    sweep = write_sweep(tmp_path, "e2e_fail", [0.4], [0])
    missing = tmp_path / "no_cifar_here"
    proc = run_sweep(
        [
            str(sweep),
            "--smoke",
            "--no-report",
            "--set",
            "data.name=cifar10",
            "--set",
            f"data.root={missing}",
            "--set",
            "data.image_size=32",
        ],
        cwd=tmp_path,
        env=proc_env,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED: mask.ratio=0.4 seed=0" in proc.stdout and "1 failed" in proc.stdout
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e2e_fail").experiment_id])
    by_role = {r.data.tags.get("jepa.role"): r for r in runs}
    assert len(runs) == 2 and by_role["sweep"].info.status == "FAILED"
    trial = by_role["trial"]
    assert trial.info.status == "FAILED" and "DataError" in trial.data.tags["jepa.failure_reason"]
    assert "\n" not in trial.data.tags["jepa.failure_reason"]


def test_trial_run__reopen_skips_epochs_already_logged(tmp_path: Path) -> None:
    from orchestrator.tracking import runs as tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = tracking.get_or_create_experiment(uri, "unit")
    kwargs = dict(
        trial_id="abcde_00000",
        run_name="t",
        tags={tracking.SEED: "0"},
        params={"mask.ratio": 0.4},
        config_yaml="mask: {ratio: 0.4}\n",
        system_metrics=False,
    )
    run = tracking.TrialRun.open(uri, exp, run_id=None, **kwargs)
    assert run.log_epoch(1, {"train_loss": 1.0, "epoch": 1}) and run.log_epoch(2, {"train_loss": 0.5})
    run.close("FAILED", "RuntimeError: worker died\nsecond line")
    assert (
        tracking.client(uri).get_run(run.run_id).data.tags[tracking.FAILURE_REASON]
        == "RuntimeError: worker died"
    )
    # The retry resumed from the epoch-1 checkpoint and found its run by the trial id.
    retry = tracking.TrialRun.open(uri, exp, run_id=None, **kwargs)
    assert retry.run_id == run.run_id and retry.reopened and retry.logged_epochs == 2
    assert not retry.log_epoch(2, {"train_loss": 0.6}) and retry.log_epoch(3, {"train_loss": 0.4})
    retry.close("FINISHED")
    c = tracking.client(uri)
    final = c.get_run(run.run_id)
    assert final.info.status == "FINISHED" and tracking.FAILURE_REASON not in final.data.tags
    assert [(m.step, m.value) for m in c.get_metric_history(run.run_id, "train_loss")] == [
        (1, 1.0),
        (2, 0.5),
        (3, 0.4),
    ]
    assert final.data.params == {"mask.ratio": "0.4"}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--address", "127.0.0.1:1"], "--address 127.0.0.1:1"),
        (["--tracking-uri", "http://127.0.0.1:1"], "tracking URI"),
    ],
)
def test_sweep_cli__unreachable_service_exits_2_fast(
    tmp_path: Path, proc_env: dict[str, str], flags: list[str], expected: str
) -> None:
    sweep = write_sweep(tmp_path, "e2e_addr", [0.4], [0])
    proc = run_sweep([str(sweep), "--smoke", *flags], cwd=tmp_path, env=proc_env, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr
