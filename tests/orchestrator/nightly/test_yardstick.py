"""The yardstick around each section: the peak samples' median and spread, and other processes' CPU load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from orchestrator.nightly.yardstick import OtherLoad, peak_metrics, suite_peak


def test_peak_metrics__median_of_the_samples_and_their_spread() -> None:
    assert peak_metrics("quality", {}, [40.0, 50.0]) == {
        "quality.matmul_peak_spread": 1.25,
        "quality.matmul_peak_gflops": 45.0,
    }
    bench = peak_metrics("bench_cpu", {"bench_cpu.matmul_peak_gflops": 80.0}, [100.0, 90.0])
    assert bench == {"bench_cpu.matmul_peak_spread": 1.25}  # a bench keeps its own peak
    measured = {"bench_cpu.matmul_peak_gflops": 25.0, "quality.matmul_peak_gflops": 100.0}
    measured.update({"bench_cpu.matmul_peak_spread": 1.1, "quality.matmul_peak_spread": 1.3})
    assert suite_peak(measured, ["bench_cpu", "quality"]) == {
        "suite.matmul_peak_gflops": pytest.approx(50.0),
        "suite.matmul_peak_spread": 1.3,
    }


LOOP = [sys.executable, "-c", "while True: pass"]


def busy_share(seconds: float = 0.5) -> float:
    load = OtherLoad()
    time.sleep(seconds)
    share = load.share()
    assert share is not None
    return share


def test_other_load__counts_other_processes_busy_cpu_but_not_this_process_or_its_children() -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    child = subprocess.Popen(LOOP)
    try:
        ours = busy_share()
    finally:
        child.kill()
        child.wait()
    # The same loop, but not ours: the shell that starts it exits, so it is nobody's child here.
    spawned = subprocess.run(
        ["sh", "-c", f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(spawned.stdout)
    try:
        others = busy_share()
    finally:
        os.kill(pid, signal.SIGKILL)
    # One loop keeps one of the CPUs busy: half of that is well above the noise of a reading.
    assert others > ours + 0.5 / cpus, (ours, others)
