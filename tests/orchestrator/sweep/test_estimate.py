"""The cost estimate and the trial table ``--dry-run`` prints."""

from __future__ import annotations

from pathlib import Path

from orchestrator.sweep.estimate import trial_seconds
from orchestrator.sweep.plan import plan_sweep
from orchestrator.sweep.spec import load_spec
from tests.orchestrator.sweep.test_spec import BASE, write


def test_trial_seconds__scales_with_epochs_and_device(tmp_path: Path) -> None:
    plan = plan_sweep(load_spec(write(tmp_path, BASE)))
    t = plan.trials[0]
    short, long = (
        plan.trial_config(t.params, t.seed),
        plan.trial_config(t.params, t.seed, {"train.epochs": 30}),
    )
    assert 0 < trial_seconds(short, "cpu", 2) < trial_seconds(long, "cpu", 2)
    assert trial_seconds(long, "gpu", 2) < trial_seconds(long, "cpu", 2)
