"""The orchestration-overhead section: tiny trials through the sweep CLI over the same trials in-process.

The same tiny trials run twice: through ``python -m orchestrator.sweep FILE --smoke`` in a subprocess (process
start, Ray, Tune, MLflow child runs: what a user pays) and through ``jepa_core.train.train`` called in this
process, one after the other. Both sides run trials one at a time with the same torch thread count, so the
ratio is the orchestrator's cost, not a difference in parallelism.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from orchestrator.nightly.suite import OverheadSpec
from orchestrator.nightly.yardstick import TorchThreads
from orchestrator.sweep.overhead import parse_overhead_line
from orchestrator.tracking.runs import one_line

REPO = Path(__file__).resolve().parents[2]
Log = Callable[[str], None]


def overhead_sweep_text(spec: OverheadSpec, name: str) -> str:
    """A one-configuration grid sweep over ``spec.seeds`` whose ``--smoke`` changes nothing in the trials.

    ``--smoke`` is how the sweep CLI is exercised in CI; here it only pins the resources and runs the trials
    one at a time (as the in-process side does).
    """
    body = {
        "name": name,
        "description": "Orchestration overhead probe written by python -m orchestrator.nightly.",
        "method": "grid",
        "metric": {"name": "probe_acc", "goal": "maximize"},
        "parameters": {},
        "seeds": list(spec.seeds),
        "max_failures": 0,
        "trainer": {"preset": spec.trainer.preset, "overrides": dict(spec.trainer.overrides)},
        "smoke": {
            "overrides": {},
            "resources": {"cpu": spec.cpus, "gpu": 0},
            "max_concurrent_trials": 1,
        },
    }
    if spec.trainer.preset is None:
        del body["trainer"]["preset"]
    return yaml.safe_dump(body, sort_keys=False)


def _run_sweep(cmd: list[str], env: dict[str, str], log_path: Path, timeout: float) -> int:
    """Runs the sweep CLI in its own process group (so a timeout ends Ray's processes it started too)."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(timeout=15)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
            raise RuntimeError(
                f"the sweep ran past overhead.timeout_s={timeout:g} s (log: {log_path})"
            ) from None


def _failure_line(log_path: Path) -> str:
    """The sweep log's last error line (else its last line): what the section's failure says."""
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "FAILED", "Traceback")) or "Error" in ln]
    return one_line((errors or lines or ["no output"])[-1])


def measure_overhead(
    spec: OverheadSpec, work: Path, logs: Path, tracking_uri: str, experiment: str, log: Log
) -> dict[str, float]:
    """Wall time of the tiny trials through the sweep CLI over the same trials trained in-process."""
    from jepa_core.train import train
    from orchestrator.sweep import load_spec, plan_sweep

    sweep_file = work / "overhead_sweep.yaml"
    sweep_file.write_text(overhead_sweep_text(spec, f"{experiment}-overhead"))
    plan = plan_sweep(load_spec(sweep_file), profile="smoke")
    # The sweep's trainable adds exactly these two keys to every trial config.
    extra = {"train.num_threads": spec.cpus, "train.progress": False}

    start = time.perf_counter()
    with TorchThreads():
        for trial in plan.trials:
            train(plan.trial_config(trial.params, trial.seed, extra), work / f"direct_{trial.index}")
    direct = time.perf_counter() - start
    log(f"overhead: {len(plan.trials)} trials in-process in {direct:.1f} s; now through the sweep CLI")

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    log_path = logs / "overhead_sweep.log"
    cmd = [sys.executable, "-m", "orchestrator.sweep", str(sweep_file), "--smoke"]
    storage = spec.storage_path or str(work / "ray_results")
    cmd += ["--tracking-uri", tracking_uri, "--storage-path", storage, "--no-report"]
    start = time.perf_counter()
    code = _run_sweep(cmd, env, log_path, spec.timeout_s)
    sweep = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"the sweep exited {code}: {_failure_line(log_path)} (log: {log_path})")
    return {
        "overhead.sweep_wall_s": sweep,
        "overhead.direct_wall_s": direct,
        "overhead.wall_ratio": sweep / direct,
        "overhead.extra_s": sweep - direct,
        **startup_winddown(log_path.read_text(errors="replace")),
    }


def startup_winddown(sweep_log: str) -> dict[str, float]:
    """``overhead.startup_s`` and ``overhead.winddown_s`` from the sweep's own ``overhead:`` closing line
    (command to the first trial's first step; last trial's last epoch to the end, here without a report);
    empty when the line is missing (a sweep older than the line)."""
    found = parse_overhead_line(sweep_log)
    if found is None:
        return {}
    return {"overhead.startup_s": found[0], "overhead.winddown_s": found[1]}
