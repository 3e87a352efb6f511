"""The overhead section's generated sweep file."""

from __future__ import annotations

from pathlib import Path

from orchestrator.nightly.overhead import overhead_sweep_text
from orchestrator.nightly.suite import load_suite
from tests.orchestrator.nightly.tiny_suite import REPO


def test_overhead_sweep_text__is_a_valid_smoke_sweep_of_one_trial_per_seed(tmp_path: Path) -> None:
    from orchestrator.sweep import load_spec, plan_sweep

    suite = load_suite(REPO / "sweeps" / "nightly.yaml", smoke=True)
    assert suite.overhead is not None
    path = tmp_path / "overhead.yaml"
    path.write_text(overhead_sweep_text(suite.overhead, "nightly-overhead"))
    plan = plan_sweep(load_spec(path), profile="smoke")
    assert [t.seed for t in plan.trials] == list(suite.overhead.seeds)
    assert plan.max_concurrent_trials == 1 and plan.resources.gpu == 0
    cfg = plan.trial_config(plan.trials[0].params, plan.trials[0].seed)
    assert cfg.train.device == "cpu" and cfg.data.name == "digits"


def test_startup_winddown__read_from_the_sweeps_closing_line() -> None:
    from orchestrator.nightly.overhead import startup_winddown

    log = (
        "1 of 1 trials finished, 0 failed\nreport: skipped (--no-report)\n"
        "overhead: start-up 27.3 s (command to the first trial's first step), "
        "wind-down 5.4 s (the last trial's last epoch to this line)\nmlflow ui ...\n"
    )
    assert startup_winddown(log) == {"overhead.startup_s": 27.3, "overhead.winddown_s": 5.4}
    assert startup_winddown("1 of 1 trials finished, 0 failed\n") == {}
