"""The cost estimate and the trial table ``--dry-run`` prints."""

from __future__ import annotations

from pathlib import Path

from orchestrator.sweep.estimate import CPU_FALLBACK_GFLOPS_PER_THREAD, trial_seconds
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


def test_trial_seconds__follows_the_machines_timed_matmul_rate(tmp_path: Path, monkeypatch) -> None:
    import orchestrator.sweep.estimate as estimate

    plan = plan_sweep(load_spec(write(tmp_path, BASE)))
    cfg = plan.trial_config(plan.trials[0].params, plan.trials[0].seed)
    fixed = estimate.TRIAL_SETUP_S["cpu"] + estimate._evaluations(cfg) * estimate.EVAL_FIXED_S["cpu"]
    monkeypatch.setattr(estimate, "cpu_thread_gflops", lambda: 50.0)
    slow = trial_seconds(cfg, "cpu", 1) - fixed
    monkeypatch.setattr(estimate, "cpu_thread_gflops", lambda: 125.0)  # an AVX-512 core: 2.5x the rate
    fast = trial_seconds(cfg, "cpu", 1) - fixed
    assert abs(slow / fast - 2.5) < 1e-6
    # A second thread helps, less than twice.
    assert 1.0 < (trial_seconds(cfg, "cpu", 1) - fixed) / (trial_seconds(cfg, "cpu", 2) - fixed) < 2.0


def test_cpu_thread_gflops__times_a_real_matmul_without_importing_torch_here() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from orchestrator.sweep.estimate import cpu_thread_gflops; r = cpu_thread_gflops(); "
        "assert 'torch' not in sys.modules; assert 1 < r < 10000, r; print(r)"
    )
    repo = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) != CPU_FALLBACK_GFLOPS_PER_THREAD  # measured, not the fallback


def test_start_cpu_timing__the_rate_timed_ahead_is_collected_later_without_importing_torch_here() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from orchestrator.sweep import estimate; estimate.start_cpu_timing(); "
        "child = estimate._timing; assert child is not None and 'torch' not in sys.modules; "
        "r = estimate.cpu_thread_gflops(); assert child.returncode == 0 and estimate._timing is child; "
        "assert 'torch' not in sys.modules; print(r)"
    )
    repo = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 1 < float(proc.stdout) < 10000 and float(proc.stdout) != CPU_FALLBACK_GFLOPS_PER_THREAD
