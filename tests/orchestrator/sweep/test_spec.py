"""The sweep-file schema: shipped files validate, every kind of mistake names the file and the key, and each
field coerces (or refuses to) on purpose."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.sweep.estimate import sweep_estimate
from orchestrator.sweep.plan import plan_sweep
from orchestrator.sweep.spec import SpecError, load_spec

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


# ---- good files -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_sweeps__validate_with_and_without_smoke(path: Path) -> None:
    spec = load_spec(path)
    full, smoke = plan_sweep(spec), plan_sweep(spec, profile="smoke")
    assert spec.preset == "fmnist_gpu" and spec.expected_runtime and spec.resources.gpu > 0
    assert smoke.resources.gpu == 0 and smoke.resources.cpu == 1
    if spec.method == "grid":
        assert len(spec.seeds) == 3 and smoke.trials == full.trials  # smoke keeps every trial of the grid
    cfg = smoke.trial_config({p.key: (p.values or (p.min,))[0] for p in spec.parameters}, spec.seeds[0])
    assert cfg.train.device == "cpu" and cfg.train.epochs <= 2
    seconds, device, conc = sweep_estimate(smoke, 2.0, 0)
    assert device == "cpu" and conc == 2 and seconds is not None and seconds < 300


# The slower 2-core machine kind seen (AMD EPYC without AVX-512): 110-126 GFLOP/s over 2 threads at 2048^3.
SLOW_CPU_GFLOPS_PER_THREAD = 55.0


@pytest.mark.parametrize(
    "path",
    [*SHIPPED, REPO / "sweeps" / "target_size_cpu.yaml"],
    ids=[p.name for p in SHIPPED] + ["target_size_cpu.yaml"],
)
def test_shipped_sweeps__cpu_profile_is_a_real_experiment_within_45_minutes_on_the_slow_kind(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.sweep.estimate as estimate

    monkeypatch.setattr(estimate, "cpu_thread_gflops", lambda: SLOW_CPU_GFLOPS_PER_THREAD)
    spec = load_spec(path)
    cpu = plan_sweep(spec, profile="cpu")
    assert cpu.resources.gpu == 0 and cpu.profile.expected_runtime
    cfg = cpu.trial_config({p.key: (p.values or (p.min,))[0] for p in spec.parameters}, spec.seeds[0])
    # Real data (at least half the training split), the 7 x 7 patch grid, more than a pipeline check's epochs.
    assert (cfg.data.subset or 60000) >= 30000 and cfg.data.image_size // cfg.model.patch_size >= 7
    assert cfg.train.device == "cpu" and cfg.train.epochs >= 2 and len(spec.seeds) >= 2
    seconds, device, conc = sweep_estimate(cpu, 2.0, 0)
    assert device == "cpu" and conc == 2 and seconds is not None and seconds <= 45 * 60, seconds


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
    "cpu_section_of_a_cpu_sweep": (
        BASE + "cpu:\n  overrides: {train.epochs: 1}\n",
        "key 'cpu': this sweep's",
    ),
    "cpu_section_with_a_gpu": (
        BASE + "resources: {gpu: 1}\ncpu:\n  resources: {cpu: 1, gpu: 0.5}\n",
        "'cpu.resources.gpu'",
    ),
    "grid_cpu_num_samples": (BASE + "resources: {gpu: 1}\ncpu:\n  num_samples: 2\n", "'cpu.num_samples'"),
    "cpu_override_of_swept_key": (
        BASE + "resources: {gpu: 1}\ncpu:\n  overrides: {predictor.depth: 3}\n",
        "'cpu.overrides.predictor.depth'",
    ),
    "bad_cpu_override_value": (
        BASE + "resources: {gpu: 1}\ncpu:\n  overrides: {train.epochs: -1}\n",
        "'cpu.overrides.train.epochs'",
    ),
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


# ---- coercion, field by field -----------------------------------------------------------------------------
SEEDS = "seeds: [0, 1, 2]"
RANDOM = BASE.replace("method: grid", "method: random\nnum_samples: 2").replace(
    "mask.ratio: {values: [0.3, 0.5]}", "mask.ratio: {distribution: log_uniform, min: 0.01, max: 0.5}"
)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Counts are strict: a quoted number, a float or a boolean is a mistake in the file.
        ("num_samples: 2", 'num_samples: "4"', "key 'num_samples': input should be a valid integer, got '4'"),
        ("num_samples: 2", "num_samples: 2.0", "key 'num_samples': input should be a valid integer"),
        (
            "num_samples: 2",
            "num_samples: true",
            "key 'num_samples': input should be a valid integer, got True",
        ),
        (SEEDS, "seeds: [0, 1.5]", "key 'seeds': item 2: input should be a valid integer"),
        (SEEDS, "seeds: [0, true]", "key 'seeds': item 2: input should be a valid integer"),
        (SEEDS, 'seeds: ["0"]', "key 'seeds': item 1: input should be a valid integer, got '0'"),
        (SEEDS, "seeds: []", "key 'seeds': expected at least 1 item, got []"),
        # Resources are numbers (ints included), never strings or booleans.
        (
            "seeds: [0, 1, 2]",
            'seeds: [0]\nresources: {cpu: "2"}',
            "'resources.cpu': input should be a valid",
        ),
        (
            "seeds: [0, 1, 2]",
            "seeds: [0]\nresources: {gpu: true}",
            "'resources.gpu': input should be a valid",
        ),
        (SEEDS, "seeds: [0]\nmax_failures: 1.0", "key 'max_failures': input should be a valid"),
        # Bounds are numbers; numeric strings are read as numbers (see below), booleans are not.
        ("min: 0.01", "min: true", "key 'parameters.mask.ratio.min': expected a number, got True"),
        ("min: 0.01", "min: small", "key 'parameters.mask.ratio.min': expected a number, got 'small'"),
        ("min: 0.01", "min: .inf", "key 'parameters.mask.ratio.min': expected a number, got inf"),
        # Scheduler: the short form and the mapping, each with its own key.
        (
            "seeds: [0, 1, 2]",
            "seeds: [0]\nscheduler: {type: asha, grace: 1}",
            "'scheduler.grace': unknown key",
        ),
        (SEEDS, "seeds: [0]\nscheduler: {grace_period: 1}", "key 'scheduler.type': is required"),
        (
            "seeds: [0, 1, 2]",
            "seeds: [0]\nscheduler: ash",
            "'scheduler': must be one of fifo, asha, got 'ash'",
        ),
        # Keys must be strings, at the top level and under parameters.
        (SEEDS, "seeds: [0]\n1: one", "key '1': keys must be strings"),
    ],
)
def test_load_spec__coerces_per_field_on_purpose(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in RANDOM
    path = write(tmp_path, RANDOM.replace(old, new))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value), str(err.value)


def test_load_spec__unknown_scheduler_key_lists_the_keys_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "scheduler: {type: asha, grace_periods: 1}\n")
    with pytest.raises(SpecError, match=r"did you mean 'grace_period'\?\); allowed: type, grace_period, "):
        load_spec(path)


def test_load_spec__bounds_read_yaml_exponents_as_numbers(tmp_path: Path) -> None:
    # PyYAML reads 1e-3 (no dot) as the string "1e-3": a bound accepts it as the number it means.
    text = RANDOM.replace("min: 0.01, max: 0.5", "min: 1e-3, max: '0.5'").replace(
        "predictor.depth: {values: [1, 2]}", 'predictor.depth: {distribution: int_uniform, min: "1", max: 3}'
    )
    spec = load_spec(write(tmp_path, text))
    ratio, depth = spec.parameters
    assert (ratio.min, ratio.max) == (0.001, 0.5) and isinstance(ratio.max, float)
    assert (depth.min, depth.max) == (1, 3) and isinstance(depth.min, int)
    assert ratio.domain_text() == "mask.ratio ~ log_uniform[0.001, 0.5]"


def test_load_spec__numbers_keep_their_type_and_empty_sections_are_empty(tmp_path: Path) -> None:
    text = BASE.replace("trainer:\n  preset: fmnist_cpu\n  overrides: {train.epochs: 3}\n", "trainer:\n")
    text = text.replace("smoke:\n  overrides: {data.subset: 500, train.epochs: 1}\n", "smoke:\n")
    spec = load_spec(write(tmp_path, text + "resources: {cpu: 2, gpu: 0.5}\nscheduler: asha\n"))
    assert spec.resources.cpu == 2.0 and isinstance(spec.resources.cpu, float) and spec.resources.gpu == 0.5
    assert (spec.scheduler.kind, spec.scheduler.grace_period, spec.scheduler.reduction_factor) == (
        "asha",
        1,
        3.0,
    )
    assert spec.preset is None and spec.overrides == {}
    assert spec.smoke_overrides == {}  # an empty smoke section is a smoke section: --smoke may run
    assert [p.values for p in spec.parameters] == [
        (0.3, 0.5),
        (1, 2),
    ]  # swept values are passed on as written
    assert isinstance(spec.parameters[1].values[0], int)
    assert load_spec(write(tmp_path, BASE.split("smoke:")[0], "plain.yaml")).smoke_overrides is None
