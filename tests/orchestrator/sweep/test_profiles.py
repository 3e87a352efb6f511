"""Profiles: which sizing of a sweep runs (gpu, cpu, smoke), chosen by the cluster's GPUs or by --profile."""

from __future__ import annotations

import pytest

from orchestrator.sweep.errors import SpecError
from orchestrator.sweep.estimate import local_gpus
from orchestrator.sweep.plan import plan_sweep
from orchestrator.sweep.profiles import choose_profile, plan_profiles, profile_line, requested_profile
from orchestrator.sweep.spec import load_spec
from tests.orchestrator.sweep.test_cli import cli
from tests.orchestrator.sweep.test_spec import BASE, REPO, write

# BASE's trials ask for a GPU here, and it gets a CPU-sized section.
GPU_SWEEP = (
    BASE + "resources: {cpu: 2, gpu: 0.5}\ncpu:\n  overrides: {train.epochs: 2}\n  resources: {cpu: 1}\n"
)


def test_choose_profile__the_clusters_gpus_decide_unless_asked(tmp_path) -> None:
    spec = load_spec(write(tmp_path, GPU_SWEEP))
    assert choose_profile(spec, None, 1, "the Ray cluster") == ("gpu", "the Ray cluster has 1 GPU")
    assert choose_profile(spec, None, 0, "the Ray cluster") == ("cpu", "the Ray cluster has no GPU")
    assert choose_profile(spec, "smoke", 4, "the Ray cluster") == ("smoke", "--smoke")
    assert choose_profile(spec, "cpu", 4, "the Ray cluster") == ("cpu", "--profile cpu")
    with pytest.raises(SpecError, match="--profile gpu: the Ray cluster has no GPU"):
        choose_profile(spec, "gpu", 0, "the Ray cluster")


def test_choose_profile__files_without_a_gpu_run_or_a_cpu_section(tmp_path) -> None:
    cpu_only = load_spec(write(tmp_path, BASE, "cpu_only.yaml"))  # no resources.gpu: the file is its CPU run
    assert choose_profile(cpu_only, None, 8, "the Ray cluster") == (
        "cpu",
        "the sweep's trials ask for no GPU",
    )
    with pytest.raises(SpecError, match="trials ask for no GPU"):
        choose_profile(cpu_only, "gpu", 8, "the Ray cluster")
    no_cpu = load_spec(write(tmp_path, BASE + "resources: {gpu: 1}\n", "no_cpu.yaml"))
    profile, why = choose_profile(no_cpu, None, 0, "this machine")
    assert profile == "gpu" and "no cpu section" in why  # runs as written, saying so (and warning the cost)
    with pytest.raises(SpecError, match="no 'cpu' section"):
        choose_profile(no_cpu, "cpu", 0, "this machine")


def test_requested_profile__smoke_is_profile_smoke_and_conflicts_are_refused() -> None:
    assert requested_profile(None, False) is None
    assert requested_profile(None, True) == requested_profile("smoke", True) == "smoke"
    with pytest.raises(SpecError, match="cannot be combined"):
        requested_profile("cpu", True)


def test_plan__the_cpu_profile_layers_its_section_over_the_trainer_section(tmp_path) -> None:
    spec = load_spec(write(tmp_path, GPU_SWEEP))
    plans = plan_profiles(spec, None, {"optim.lr": 0.002})
    assert set(plans.by_profile) == {"gpu", "cpu", "smoke"}
    gpu, cpu = plans.by_profile["gpu"], plans.by_profile["cpu"]
    assert (gpu.resources.gpu, cpu.resources.gpu, cpu.resources.cpu) == (0.5, 0.0, 1.0)
    params = gpu.trials[0].params
    assert gpu.trial_config(params, 0).train.epochs == 3  # trainer.overrides
    assert cpu.trial_config(params, 0).train.epochs == 2  # the cpu section, over it
    assert cpu.trial_config(params, 0).optim.lr == 0.002  # --set, last
    assert cpu.trials == gpu.trials and not cpu.smoke and plans.by_profile["smoke"].smoke


def test_plan__a_bad_cpu_section_is_found_whichever_profile_runs(tmp_path) -> None:
    bad = GPU_SWEEP.replace("{train.epochs: 2}", "{train.epochs: -2}")
    with pytest.raises(SpecError, match="'cpu.overrides.train.epochs'"):
        plan_sweep(load_spec(write(tmp_path, bad)), profile="smoke")


def test_profile_line__names_the_profile_why_and_the_others(tmp_path) -> None:
    spec = load_spec(write(tmp_path, GPU_SWEEP))
    line = profile_line(spec, "cpu", "the Ray cluster has no GPU")
    assert line.startswith("profile cpu (the Ray cluster has no GPU): the sweep file's cpu section")
    assert line.endswith("--profile gpu|smoke chooses another")


@pytest.mark.skipif(local_gpus() > 0, reason="this machine has a GPU")
def test_cli__profile_gpu_without_a_gpu_exits_2_before_ray_starts(tmp_path) -> None:
    path = write(tmp_path, GPU_SWEEP)
    proc = cli(str(path), "--profile", "gpu", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--profile gpu: this machine has no GPU" in lines[0], proc.stderr
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "mlflow.db").exists()
    proc = cli(str(path), "--profile", "cpu", "--smoke", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr


@pytest.mark.parametrize("name", ["ema_momentum", "mask_ratio", "predictor_depth", "joint_optuna"])
@pytest.mark.skipif(local_gpus() > 0, reason="this machine has a GPU")
def test_cli__dry_run_on_a_machine_without_a_gpu_picks_the_cpu_profile(tmp_path, name: str) -> None:
    proc = cli(str(REPO / "sweeps" / f"{name}.yaml"), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("profile cpu (this machine has no GPU): the sweep file's cpu section"), first
    assert "(profile cpu)" in proc.stdout and "expected runtime (sweep file)" in proc.stdout


def test_main__resume_keeps_the_profile_the_sweep_started_with(tmp_path, capsys) -> None:
    import json

    from orchestrator.sweep.cli import main
    from orchestrator.sweep.state import STATE_FILE, state_profile

    path = write(tmp_path, GPU_SWEEP)
    run = tmp_path / "results" / "unit-smoke-20261202-000000"
    run.mkdir(parents=True)
    state = {"name": "unit", "status": "running", "parent_run_id": "p", "profile": "smoke", "sets": {}}
    (run / STATE_FILE).write_text(json.dumps(state))
    assert main([str(path), "--resume", "--profile", "cpu", "--storage-path", str(tmp_path / "results")]) == 2
    assert "the interrupted run used --profile smoke" in capsys.readouterr().err
    # State files written before profiles hold only the smoke flag.
    assert state_profile({"smoke": True}, "gpu") == "smoke"
    assert state_profile({"smoke": False}, "cpu") == "cpu"
