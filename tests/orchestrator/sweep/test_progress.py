"""The sweep's live view: tables when something happened, a one-line heartbeat when nothing did."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.sweep import tuner
from orchestrator.sweep.plan import plan_sweep
from orchestrator.sweep.spec import load_spec
from tests.orchestrator.sweep.test_spec import BASE, write


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def printer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    clock = Clock()
    monkeypatch.setattr(tuner.time, "monotonic", clock)
    plan = plan_sweep(load_spec(write(tmp_path, BASE)))
    out: list[str] = []
    p = tuner.ProgressPrinter(plan, every_s=20, heartbeat_s=60)
    monkeypatch.setattr(p, "_out", out.append)
    trials = [
        SimpleNamespace(
            trial_id=str(t.index),
            status="PENDING",
            last_result={},
            error_file=None,
            config={"params": t.params, "seed": t.seed},
        )
        for t in plan.trials
    ]
    p.setup()
    return p, trials, clock, out


def test_progress__a_silent_stretch_gets_one_heartbeat_line_naming_the_running_trials(printer) -> None:
    p, trials, clock, out = printer
    for t in trials[:2]:
        t.status = "RUNNING"
        p.on_trial_start(0, trials, t)
    clock.now += 21
    p.on_step_end(0, trials)
    assert out[-1].splitlines()[0].endswith("10 pending, 2 running")  # the status table
    assert len(out) == 2
    clock.now += 30
    p.on_step_end(0, trials)
    assert len(out) == 2  # nothing new, and not yet a minute of silence
    clock.now += 31
    p.on_step_end(0, trials)
    assert len(out) == 3 and "\n" not in out[-1]
    assert "10 pending, 2 running; no new epoch in 61 s; running: " in out[-1]
    assert "(epoch 0/3)" in out[-1] and "mask.ratio=" in out[-1]
    clock.now += 5
    trials[0].last_result = {"epoch": 1, "probe_acc": 0.5, "train_loss": 0.3}
    p.on_trial_result(0, trials, trials[0], trials[0].last_result)
    p.on_step_end(0, trials)
    assert len(out) == 3  # a result, but within every_s of the last line
    clock.now += 20
    p.on_step_end(0, trials)
    assert len(out) == 4 and "1/3" in out[-1] and "0.5000" in out[-1]  # the table again, with the result


def test_progress__trials_the_searcher_has_not_suggested_yet_count_as_more_to_come(printer) -> None:
    # Optuna suggests a trial only when a slot frees: Tune holds 3 of the 12 planned.
    p, trials, clock, out = printer
    held = trials[:3]
    for t in held[:2]:
        t.status = "RUNNING"
        p.on_trial_start(0, held, t)
    clock.now += 21
    p.on_step_end(0, held)
    assert out[-1].splitlines()[0].endswith("1 pending, 2 running, 9 more to come")
    clock.now += 61
    p.on_step_end(0, held)
    assert "1 pending, 2 running, 9 more to come; no new epoch in 61 s" in out[-1]
