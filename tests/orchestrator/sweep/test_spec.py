"""Sweep-file schema, trial expansion, ``--dry-run`` and the CLI's exit 2 on every kind of mistake."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.sweep.cli import main
from orchestrator.sweep.estimate import sweep_estimate, trial_seconds
from orchestrator.sweep.spec import SpecError, load_spec, plan_sweep
from orchestrator.tracking.runs import redact_uri, resolve_tracking_uri
from tests.orchestrator.conftest import run_sweep

REPO = Path(__file__).resolve().parents[3]
SHIPPED = [
    REPO / "sweeps" / f"{n}.yaml" for n in ("ema_momentum", "mask_ratio", "predictor_depth", "joint_optuna")
]

BASE = """\
name: unit
method: grid
metric: {name: probe_acc, goal: maximize}
parameters:
  mask.ratio: {values: [0.3, 0.5]}
  predictor.depth: {values: [1, 2]}
seeds: [0, 1, 2]
trainer:
  preset: fmnist_cpu
  overrides: {train.epochs: 3}
smoke:
  overrides: {data.subset: 500, train.epochs: 1}
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_sweep(list(args), cwd, {**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)


# ---- good files -------------------------------------------------------------------------------------------
def test_plan_sweep__grid_expands_configs_times_seeds(tmp_path: Path) -> None:
    plan = plan_sweep(load_spec(write(tmp_path, BASE)))
    assert plan.num_trials == 2 * 2 * 3
    assert [t.index for t in plan.trials] == list(range(12))
    combos = {(t.params["mask.ratio"], t.params["predictor.depth"], t.seed) for t in plan.trials}
    assert len(combos) == 12
    by_config: dict[str, set[int]] = {}
    for t in plan.trials:
        by_config.setdefault(t.config_id, set()).add(t.seed)
    assert len(by_config) == 4 and all(seeds == {0, 1, 2} for seeds in by_config.values())


def test_plan_sweep__layers_preset_overrides_smoke_then_set(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE))
    plan = plan_sweep(spec, smoke=True, sets={"train.epochs": 2, "optim.lr": 0.01})
    t = plan.trials[5]
    cfg = plan.trial_config(t.params, t.seed).to_flat()
    assert cfg["model.embed_dim"] == 128  # preset
    assert cfg["data.subset"] == 500  # smoke
    assert cfg["train.epochs"] == 2  # --set beats the smoke and trainer overrides
    assert cfg["optim.lr"] == 0.01
    assert (cfg["mask.ratio"], cfg["predictor.depth"], cfg["train.seed"]) == (
        t.params["mask.ratio"],
        t.params["predictor.depth"],
        t.seed,
    )
    assert plan_sweep(spec).trial_config(t.params, t.seed).train.epochs == 3


def test_plan_sweep__random_is_seeded_and_shared_by_seeds(tmp_path: Path) -> None:
    text = (
        BASE.replace("method: grid", "method: random\nnum_samples: 4")
        .replace(
            "mask.ratio: {values: [0.3, 0.5]}", "mask.ratio: {distribution: uniform, min: 0.2, max: 0.6}"
        )
        .replace(
            "predictor.depth: {values: [1, 2]}",
            "predictor.depth: {distribution: int_uniform, min: 1, max: 3}",
        )
    )
    text = text.replace("smoke:\n", "smoke:\n  num_samples: 2\n")
    path = write(tmp_path, text)
    first, again = plan_sweep(load_spec(path)), plan_sweep(load_spec(path))
    assert first.trials == again.trials and first.num_trials == 12
    for t in first.trials:
        assert 0.2 <= t.params["mask.ratio"] <= 0.6 and t.params["predictor.depth"] in (1, 2, 3)
    configs = [t.params for t in first.trials if t.seed == 0]
    assert [t.params for t in first.trials if t.seed == 2] == configs
    smoke = plan_sweep(load_spec(path), smoke=True)
    assert smoke.num_trials == 6 and [t.params for t in smoke.trials if t.seed == 0] == configs[:2]


def test_plan_sweep__optuna_counts_suggestions_times_seeds(tmp_path: Path) -> None:
    text = BASE.replace("method: grid", "method: optuna\nnum_samples: 5\nscheduler: asha").replace(
        "mask.ratio: {values: [0.3, 0.5]}", "mask.ratio: {distribution: uniform, min: 0.2, max: 0.6}"
    )
    plan = plan_sweep(load_spec(write(tmp_path, text)))
    assert plan.trials == () and plan.num_trials == 15 and plan.spec.scheduler.kind == "asha"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_sweeps__validate_with_and_without_smoke(path: Path) -> None:
    spec = load_spec(path)
    full, smoke = plan_sweep(spec), plan_sweep(spec, smoke=True)
    assert spec.preset == "fmnist_gpu" and spec.expected_runtime and spec.resources.gpu > 0
    assert smoke.resources.gpu == 0 and smoke.resources.cpu == 1
    if spec.method == "grid":
        assert len(spec.seeds) == 3 and smoke.trials == full.trials  # smoke keeps every trial of the grid
    cfg = smoke.trial_config({p.key: (p.values or (p.min,))[0] for p in spec.parameters}, spec.seeds[0])
    assert cfg.train.device == "cpu" and cfg.train.epochs <= 2
    seconds, device, conc = sweep_estimate(smoke, 2.0, 0)
    assert device == "cpu" and conc == 2 and seconds is not None and seconds < 300


def test_shipped_sweeps__cover_the_three_questions() -> None:
    swept = {p.name: load_spec(p).swept_keys for p in SHIPPED}
    assert swept["ema_momentum.yaml"] == ["ema.momentum_start"]
    assert swept["mask_ratio.yaml"] == ["mask.ratio"]
    assert swept["predictor_depth.yaml"] == ["predictor.depth"]
    assert set(swept["joint_optuna.yaml"]) == {"mask.ratio", "predictor.depth", "ema.momentum_start"}
    assert load_spec(REPO / "sweeps" / "joint_optuna.yaml").method == "optuna"


# ---- malformed files --------------------------------------------------------------------------------------
MALFORMED = {
    "missing_name": (BASE.replace("name: unit\n", ""), "'name'"),
    "bad_method": (BASE.replace("method: grid", "method: bayes"), "'method'"),
    "metric_typo": (BASE.replace("probe_acc", "prob_acc"), "did you mean 'probe_acc'"),
    "bad_goal": (BASE.replace("goal: maximize", "goal: max"), "'metric.goal'"),
    "metric_on_test_split": (
        BASE.replace("name: probe_acc", "name: test_probe_acc"),
        "'metric.name': 'test_probe_acc' is scored on the test split",
    ),
    "unknown_top_key": (BASE + "paramters: {}\n", "key 'paramters': unknown key (did you mean 'parameters'"),
    "unknown_param_key": (BASE.replace("mask.ratio:", "mask.ratoi:"), "'parameters.mask.ratoi'"),
    "grid_with_distribution": (
        BASE.replace("{values: [0.3, 0.5]}", "{distribution: uniform, min: 0.1, max: 0.5}"),
        "'parameters.mask.ratio'",
    ),
    "empty_values": (BASE.replace("[0.3, 0.5]", "[]"), "'parameters.mask.ratio.values'"),
    "repeated_value": (BASE.replace("[0.3, 0.5]", "[0.3, 0.3]"), "'parameters.mask.ratio.values'"),
    "value_out_of_range": (BASE.replace("[0.3, 0.5]", "[0.3, 1.5]"), "'parameters.mask.ratio': value 1.5"),
    "value_wrong_type": (BASE.replace("[1, 2]", "[1, deep]"), "'parameters.predictor.depth'"),
    "bad_smoke_value": (BASE.replace("data.subset: 500", "data.subset: -5"), "'smoke.overrides.data.subset'"),
    "values_and_distribution": (
        BASE.replace("{values: [0.3, 0.5]}", "{values: [0.3], distribution: uniform}"),
        "'parameters.mask.ratio'",
    ),
    "min_not_below_max": (
        BASE.replace("method: grid", "method: random\nnum_samples: 2").replace(
            "{values: [0.3, 0.5]}", "{distribution: uniform, min: 0.5, max: 0.5}"
        ),
        "'parameters.mask.ratio.max'",
    ),
    "log_uniform_zero_min": (
        BASE.replace("method: grid", "method: random\nnum_samples: 2").replace(
            "{values: [0.3, 0.5]}", "{distribution: log_uniform, min: 0, max: 0.5}"
        ),
        "'parameters.mask.ratio.min'",
    ),
    "uniform_on_int_key": (
        BASE.replace("method: grid", "method: random\nnum_samples: 2").replace(
            "{values: [1, 2]}", "{distribution: uniform, min: 1, max: 4}"
        ),
        "'parameters.predictor.depth.distribution'",
    ),
    "missing_max": (
        BASE.replace("method: grid", "method: optuna\nnum_samples: 2").replace(
            "{values: [0.3, 0.5]}", "{distribution: uniform, min: 0.1}"
        ),
        "'parameters.mask.ratio.max'",
    ),
    "seed_as_parameter": (
        BASE.replace("predictor.depth: {values: [1, 2]}", "train.seed: {values: [1, 2]}"),
        "'parameters.train.seed'",
    ),
    "repeated_seed": (BASE.replace("seeds: [0, 1, 2]", "seeds: [0, 0]"), "'seeds'"),
    "seeds_not_list": (BASE.replace("seeds: [0, 1, 2]", "seeds: three"), "'seeds'"),
    "negative_seed": (BASE.replace("seeds: [0, 1, 2]", "seeds: [-1]"), "'seeds'"),
    "grid_num_samples": (BASE + "num_samples: 4\n", "'num_samples'"),
    "random_without_num_samples": (BASE.replace("method: grid", "method: random"), "'num_samples'"),
    "zero_cpu": (BASE + "resources: {cpu: 0}\n", "'resources.cpu'"),
    "negative_gpu": (BASE + "resources: {gpu: -1}\n", "'resources.gpu'"),
    "gpu_fraction_above_one": (BASE + "resources: {gpu: 1.5}\n", "'resources.gpu'"),
    "resources_typo": (BASE + "resources: {gpus: 1}\n", "'resources.gpus'"),
    "bad_scheduler": (BASE + "scheduler: hyperband\n", "'scheduler'"),
    "asha_grace_above_epochs": (
        BASE + "scheduler: {type: asha, grace_period: 9}\n",
        "'scheduler.grace_period'",
    ),
    "unknown_preset": (BASE.replace("preset: fmnist_cpu", "preset: mnist"), "'trainer.preset'"),
    "unknown_override": (
        BASE.replace("{train.epochs: 3}", "{model.dept: 3}"),
        "'trainer.overrides.model.dept'",
    ),
    "bad_override_value": (
        BASE.replace("{train.epochs: 3}", "{train.epochs: -3}"),
        "'trainer.overrides.train.epochs'",
    ),
    "override_of_swept_key": (
        BASE.replace("{data.subset: 500, train.epochs: 1}", "{mask.ratio: 0.2}"),
        "'smoke.overrides.mask.ratio'",
    ),
    "inconsistent_trial": (
        BASE.replace("predictor.depth: {values: [1, 2]}", "model.num_heads: {values: [4, 5]}"),
        "model.num_heads",
    ),
    "grid_smoke_num_samples": (BASE.replace("smoke:\n", "smoke:\n  num_samples: 2\n"), "'smoke.num_samples'"),
    "negative_max_failures": (BASE + "max_failures: -1\n", "'max_failures'"),
    "zero_concurrency": (BASE + "max_concurrent_trials: 0\n", "'max_concurrent_trials'"),
    "name_with_slash": (BASE.replace("name: unit", "name: a/b"), "'name'"),
    "metric_not_mapping": (BASE.replace("{name: probe_acc, goal: maximize}", "probe_acc"), "'metric'"),
    "duplicate_key": (BASE + "seeds: [5]\n", "'seeds' appears twice"),
    "invalid_yaml": (BASE + "parameters: [\n", "invalid YAML"),
    "not_a_mapping": ("- name: unit\n", "mapping"),
    "empty_file": ("", "mapping"),
    "tab_indent": (BASE.replace("  mask.ratio", "\tmask.ratio"), "line 5: invalid YAML"),
    # YAML tags that would build Python objects: safe_load refuses them, and so does the error.
    "python_object_tag": (
        BASE.replace("name: unit", 'name: !!python/object/apply:os.system ["echo pwned"]'),
        "line 1: invalid YAML (could not determine a constructor",
    ),
    "python_name_tag": (BASE.replace("seeds: [0, 1, 2]", "seeds: !!python/name:os.system"), "invalid YAML"),
    "unknown_distribution": (
        BASE.replace("method: grid", "method: random\nnum_samples: 2").replace(
            "{values: [0.3, 0.5]}", "{distribution: normal, min: 0.1, max: 0.5}"
        ),
        "'parameters.mask.ratio.distribution'",
    ),
    "empty_seeds": (BASE.replace("seeds: [0, 1, 2]", "seeds: []"), "'seeds'"),
    "float_for_int": (BASE.replace("[1, 2]", "[1.5, 2]"), "'parameters.predictor.depth': value 1.5"),
    "bool_for_int": (BASE.replace("[1, 2]", "[true, 2]"), "'parameters.predictor.depth': value True"),
    "infinite_value": (BASE.replace("[0.3, 0.5]", "[0.3, .inf]"), "must be finite"),
    "nan_value": (BASE.replace("[0.3, 0.5]", "[0.3, .nan]"), "must be finite"),
    "values_not_list": (
        BASE.replace("{values: [0.3, 0.5]}", "{values: 0.3}"),
        "'parameters.mask.ratio.values'",
    ),
    "param_not_mapping": (BASE.replace("{values: [0.3, 0.5]}", "0.3"), "'parameters.mask.ratio'"),
    "num_samples_not_int": (
        BASE.replace("method: grid", "method: random\nnum_samples: many").replace(
            "{values: [0.3, 0.5]}", "{distribution: uniform, min: 0.1, max: 0.5}"
        ),
        "'num_samples'",
    ),
    "int_uniform_float_bound": (
        BASE.replace("method: grid", "method: random\nnum_samples: 2").replace(
            "{values: [1, 2]}", "{distribution: int_uniform, min: 1.5, max: 3}"
        ),
        "'parameters.predictor.depth.min'",
    ),
    "tracking_uri_not_string": (BASE + "tracking_uri: 5\n", "'tracking_uri'"),
    "empty_name": (BASE.replace("name: unit", "name: ''"), "'name'"),
    "ema_above_one": (
        BASE.replace("predictor.depth: {values: [1, 2]}", "ema.momentum_start: {values: [0.99, 1.01]}"),
        "'parameters.ema.momentum_start': value 1.01",
    ),
    "depth_zero": (BASE.replace("[1, 2]", "[0, 2]"), "'parameters.predictor.depth': value 0"),
    "trainer_not_mapping": (
        BASE.replace(
            "trainer:\n  preset: fmnist_cpu\n  overrides: {train.epochs: 3}\n", "trainer: fmnist_cpu\n"
        ),
        "'trainer'",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_load_spec__malformed_file_names_file_and_key(tmp_path: Path, case: str) -> None:
    text, expected = MALFORMED[case]
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        plan_sweep(load_spec(path))
    message = str(err.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ({"mask.ratio": 0.2}, "--set mask.ratio"),
        ({"train.seed": 3}, "--set train.seed"),
        ({"model.dept": 3}, "--set model.dept"),
        ({"train.epochs": -1}, "--set"),
    ],
)
def test_plan_sweep__bad_set_is_named(tmp_path: Path, sets: dict, expected: str) -> None:
    with pytest.raises(SpecError, match=expected.replace(".", r"\.")):
        plan_sweep(load_spec(write(tmp_path, BASE)), sets=sets)


def test_plan_sweep__smoke_needs_a_smoke_section(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.split("smoke:")[0])
    with pytest.raises(SpecError, match="'smoke'"):
        plan_sweep(load_spec(path), smoke=True)


# ---- command line -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bad_method.yaml"], "'method'"),
        (["unknown_param_key.yaml", "--dry-run"], "'parameters.mask.ratoi'"),
        (["good.yaml", "--set", "mask.ratio"], "KEY=VALUE"),
        (["good.yaml", "--set", "train.epochs=-1"], "train.epochs"),
        (["missing.yaml"], "cannot read"),
        (["folder.yaml"], "cannot read sweep file (Is a directory)"),
        (["binary.yaml"], "not UTF-8"),
        (["good.yaml", "--set", "model.dept=3"], "did you mean 'model.depth'"),
        (["good.yaml", "--set", "train.epochs=abc"], "expects an integer"),
        (["good.yaml", "--set", "train.epochs=!!python/object/apply:os.system [echo]"], "--set train.epochs"),
        (["good.yaml", "--set", "=3"], "KEY=VALUE"),
        (["good.yaml", "--set", "predictor.depth=2"], "swept"),
        (["good.yaml", "--smoke", "--set", "data.subset=-2"], "data.subset"),
    ],
)
def test_cli__invalid_input_exits_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    for case in ("bad_method", "unknown_param_key"):
        write(tmp_path, MALFORMED[case][0], f"{case}.yaml")
    write(tmp_path, BASE, "good.yaml")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "binary.yaml").write_bytes(b"name: \xff\xfe bad\n")
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and expected in lines[0]


def test_cli__dry_run_prints_table_and_estimate(tmp_path: Path) -> None:
    proc = cli(str(REPO / "sweeps" / "mask_ratio.yaml"), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["#", "config_id", "mask.ratio", "seed"]
    assert len([ln for ln in lines[1:] if ln[:1].isdigit()]) == 9
    assert "estimated wall time" in proc.stdout and "expected runtime" in proc.stdout
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()


def test_main__dry_run_imports_neither_ray_nor_mlflow_nor_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from orchestrator.sweep.cli import main; "
        "rc = main([sys.argv[1], '--dry-run', '--smoke']); "
        "heavy = [m for m in ('ray', 'mlflow', 'torch') if m in sys.modules]; "
        "assert rc == 0 and not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "sweeps" / "joint_optuna.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Optuna TPE" in proc.stdout


def test_main__resume_without_interrupted_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, BASE)
    assert main([str(path), "--resume", "--storage-path", str(tmp_path / "results")]) == 2
    assert "no interrupted run" in capsys.readouterr().err


# ---- tracking URI and estimates ---------------------------------------------------------------------------
def test_resolve_tracking_uri__precedence_and_absolute_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None, None, tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert resolve_tracking_uri(None, "sqlite:///x.db", tmp_path) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_tracking_uri(None, "runs/mlruns", tmp_path) == (tmp_path / "runs" / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert resolve_tracking_uri(None, "sqlite:///x.db", tmp_path) == "http://127.0.0.1:5001"
    assert resolve_tracking_uri("http://h:1", "sqlite:///x.db", tmp_path) == "http://h:1"


def test_redact_uri__hides_password() -> None:
    assert redact_uri("https://ann:s3cret@mlflow.example/x") == "https://ann:***@mlflow.example/x"
    assert redact_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_trial_seconds__scales_with_epochs_and_device(tmp_path: Path) -> None:
    plan = plan_sweep(load_spec(write(tmp_path, BASE)))
    t = plan.trials[0]
    short, long = (
        plan.trial_config(t.params, t.seed),
        plan.trial_config(t.params, t.seed, {"train.epochs": 30}),
    )
    assert 0 < trial_seconds(short, "cpu", 2) < trial_seconds(long, "cpu", 2)
    assert trial_seconds(long, "gpu", 2) < trial_seconds(long, "cpu", 2)
