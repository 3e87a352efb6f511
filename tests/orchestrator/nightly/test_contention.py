"""The nightly on a shared machine: other work slowing the machine is no regression, a slower step still is.

Real nights of a tiny suite run with one torch thread, each pinned to one CPU so that the load beside it is
known: a quiet night writes the baseline; a night with a busy-loop process on its CPU must exit 0 although its
raw timings got worse than the tolerance allows; a night whose training step is planted 0.3 s slower must
exit 1 naming the step's time. The rules behind it are unit-tested in test_verdict.py.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator.nightly.tolerance import Tolerance
from orchestrator.nightly.verdict import INCONCLUSIVE, OK
from tests.orchestrator.nightly.tiny_suite import REPO, TINY_MODEL, TINY_SUITE, finish, write_yaml

LOOP = [sys.executable, "-c", "while True: pass"]

# ---- real nights beside busy loops ----------------------------------------------------------------
# One torch thread and one CPU per night: a busy loop on that CPU then takes a known share of it (the
# scheduler's), whatever the machine's core count, and a many-core CI box cannot hide it on another core.
ONE_THREAD = {**TINY_MODEL, "train.num_threads": 1}
SUITE: dict[str, Any] = {
    **TINY_SUITE,
    "bench": {"cpu": {**TINY_SUITE["bench"]["cpu"], "overrides": ONE_THREAD, "peak_size": 512}},
    "quality": {**TINY_SUITE["quality"], "overrides": {**TINY_SUITE["quality"]["overrides"], **ONE_THREAD}},
    # A busy loop takes half the CPU: the step and the peak both slowed 2-2.7x here. img/s with a tight -30%
    # needs 1 / 1.3 of the CPU free (inconclusive); the seconds with +150% need 1 / 2.5 and let the peak move
    # 4x, so they are usually compared normalised (and pass), else inconclusive. Either way no timing
    # regression, which is what is asserted.
    "tolerances": {
        "bench_cpu.img_per_s": {"rel": 0.3, "direction": "higher"},
        "bench_cpu.step_s_median": {"rel": 1.5, "direction": "lower"},
        "quality.wall_time_s": {"rel": 1.5, "direction": "lower"},
        "quality.probe_acc": {"abs": 0.1, "direction": "higher"},
    },
}
TIMING = ("bench_cpu.img_per_s", "bench_cpu.step_s_median", "quality.wall_time_s")
STEP_DELAY_S = 0.3  # ~10x the tiny step on one core
# Runs the nightly with jepa_core.train.train_step slowed down: imported before jepa_core.bench binds it.
PLANT = f"""
import runpy
import time

import jepa_core.train

_step = jepa_core.train.train_step


def slowed_step(*args, **kwargs):
    time.sleep({STEP_DELAY_S})
    return _step(*args, **kwargs)


jepa_core.train.train_step = slowed_step
runpy.run_module("orchestrator.nightly", run_name="__main__", alter_sys=True)
"""


def pinned(cpu: int) -> Any:
    return lambda: os.sched_setaffinity(0, {cpu})


def start(cmd: list[str], cwd: Path, db: Path, cpu: int) -> subprocess.Popen:
    """``cmd`` (a nightly) on one CPU, with the test's MLflow store and no cluster address; stderr is merged
    into stdout, so that the busy night's output can be read line by line without a second pipe filling."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        MLFLOW_TRACKING_URI=f"sqlite:///{db}",
        PYTHONUNBUFFERED="1",
    )
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=pinned(cpu),  # only the CPU affinity, set in the child before exec
    )


def verdict_csv(proc: subprocess.CompletedProcess, cwd: Path) -> dict[str, dict[str, str]]:
    """The night's ``verdict.csv`` rows by metric (the folder is the one its output names)."""
    folder = next(ln.split(": ", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("report: "))
    return {r["metric"]: r for r in csv.DictReader((cwd / folder / "verdict.csv").open())}


def beside_busy_loops(proc: subprocess.Popen, cpu: int, loops: int = 1) -> subprocess.CompletedProcess:
    """Waits for the night ``proc``, with ``loops`` busy-loop processes on its CPU while it measures.

    The loops start when the first section starts and stop when the last one is done: process start-up and
    the report are not measured, and slowed threefold they would only make the test slower.
    """
    busy: list[subprocess.Popen] = []
    lines = []
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if not busy and "bench_cpu: running" in line:
                busy = [subprocess.Popen(LOOP, preexec_fn=pinned(cpu)) for _ in range(loops)]
            elif busy and "quality: done" in line:
                _stop(busy)
        proc.wait()
    finally:
        watchdog.cancel()
        _stop(busy)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines), "")


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def contended(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A quiet night (the baseline file), then one beside a busy loop, then one with the planted step."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("pins each night to one CPU: needs os.sched_setaffinity (Linux)")
    cpu = min(os.sched_getaffinity(0))
    root = tmp_path_factory.mktemp("contention")
    write_yaml(root / "suite.yaml", SUITE)
    bench_only = {**SUITE, "quality": {"enabled": False}}
    bench_only["tolerances"] = {k: v for k, v in SUITE["tolerances"].items() if k.startswith("bench_cpu.")}
    write_yaml(root / "bench_only.yaml", bench_only)
    (root / "plant.py").write_text(PLANT)
    nightly = [sys.executable, "-m", "orchestrator.nightly", "--suite", "suite.yaml"]
    out: dict[str, Any] = {"root": root}
    out["quiet"] = finish(start([*nightly, "--write-baseline", "base.json"], root, root / "q.db", cpu))
    if out["quiet"].returncode != 0:
        return out
    busy = start([*nightly, "--baseline", "base.json"], root, root / "b.db", cpu)
    out["busy"] = beside_busy_loops(busy, cpu)
    planted = [sys.executable, "plant.py", "--suite", "bench_only.yaml", "--baseline", "base.json"]
    out["planted"] = finish(start(planted, root, root / "p.db", cpu))
    return out


@pytest.mark.slow
def test_cli__busy_loops_beside_the_night_give_no_timing_regression(contended: dict[str, Any]) -> None:
    quiet = contended["quiet"]
    assert quiet.returncode == 0, quiet.stdout
    proc = contended["busy"]
    assert proc.returncode == 0, proc.stdout
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("REGRESSION")], proc.stdout
    rows = verdict_csv(proc, contended["root"])
    for metric in TIMING:
        assert rows[metric]["verdict"] in (OK, INCONCLUSIVE), proc.stdout
        assert rows[metric]["comparison"].startswith(("normalised", "inconclusive")), proc.stdout
    # The test could fail: compared raw, as before, the busy loop made timings worse than the tolerance.
    raw_failed = [
        m for m in TIMING if not _tolerance(m).passes(float(rows[m]["baseline"]), float(rows[m]["current"]))
    ]
    assert raw_failed, f"the busy loop did not slow the night beyond a tolerance:\n{proc.stdout}"
    assert float(rows["bench_cpu.matmul_peak_gflops"]["current"]) < float(
        rows["bench_cpu.matmul_peak_gflops"]["baseline"]
    )


@pytest.mark.slow
def test_cli__a_planted_step_slowdown_still_exits_1_naming_the_metric(contended: dict[str, Any]) -> None:
    quiet = contended["quiet"]
    assert quiet.returncode == 0, quiet.stdout
    proc = contended["planted"]
    assert proc.returncode == 1, proc.stdout
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("REGRESSION:")]
    step = [ln for ln in lines if ln.startswith("REGRESSION: bench_cpu.step_s_median:")]
    assert step, proc.stdout
    assert "at the baseline's peak" in step[0] and "normalised by the same-run matmul peak" in step[0]


def _tolerance(metric: str) -> Tolerance:
    spec = SUITE["tolerances"][metric]
    kind = "rel" if "rel" in spec else "abs"
    return Tolerance(kind, float(spec[kind]), spec["direction"])
