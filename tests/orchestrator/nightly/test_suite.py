"""Loading the suite file: the repository's suite, the fingerprint, the --smoke merge and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.nightly.suite import SuiteError, load_suite
from tests.orchestrator.nightly.tiny_suite import REPO, TINY_SUITE, write_yaml


def test_load_suite__the_repository_suite_is_valid_in_both_modes() -> None:
    full = load_suite(REPO / "sweeps" / "nightly.yaml")
    smoke = load_suite(REPO / "sweeps" / "nightly.yaml", smoke=True)
    assert full.quality is not None and smoke.quality is not None
    assert {b.device for b in full.bench} == {"cpu", "cuda"}
    assert full.fingerprint != smoke.fingerprint
    # smoke overrides merge over the full section's overrides key by key
    assert smoke.quality.trainer.preset == full.quality.trainer.preset
    assert smoke.quality.trainer.config().train.epochs < full.quality.trainer.config().train.epochs
    assert smoke.tolerances["bench_cpu.img_per_s"].amount >= full.tolerances["bench_cpu.img_per_s"].amount


def test_load_suite__fingerprint_ignores_tolerances_but_not_settings(tmp_path: Path) -> None:
    a = load_suite(write_yaml(tmp_path / "a.yaml", TINY_SUITE))
    looser = {**TINY_SUITE, "tolerances": {"quality.probe_acc": {"abs": 0.5, "direction": "higher"}}}
    b = load_suite(write_yaml(tmp_path / "b.yaml", looser))
    longer = {**TINY_SUITE, "quality": {**TINY_SUITE["quality"], "seeds": [0, 1]}}
    c = load_suite(write_yaml(tmp_path / "c.yaml", longer))
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_load_suite__a_preset_redefined_under_the_same_name_changes_the_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite names a preset; what it measures is what the name stands for today.
    from jepa_core.config import PRESETS

    suite = {**TINY_SUITE, "bench": {"cpu": {"preset": "fmnist_cpu", "steps": 2}}}
    path = write_yaml(tmp_path / "suite.yaml", suite)
    before = load_suite(path).fingerprint
    monkeypatch.setitem(PRESETS, "fmnist_cpu", {**PRESETS["fmnist_cpu"], "model.depth": 9})
    assert load_suite(path).fingerprint != before


def test_load_suite__the_fingerprint_and_settings_of_a_fixed_suite_do_not_drift(tmp_path: Path) -> None:
    # The fingerprint links nights in MLflow (tag jepa.nightly.suite): computing it differently would start
    # a new baseline on every machine without a word. Computed by the code before the pydantic schema.
    suite = load_suite(write_yaml(tmp_path / "suite.yaml", TINY_SUITE))
    assert suite.fingerprint == "496b4c4b8695"
    bench = suite.settings["bench"][0]
    assert bench == {
        "device": "cpu",
        "steps": 2,
        "warmup": 1,
        "peak_size": 256,
        "preset": None,
        "overrides": dict(sorted({**TINY_SUITE["bench"]["cpu"]["overrides"], "train.device": "cpu"}.items())),
    }
    assert suite.settings["quality"]["seeds"] == (0,) and suite.settings["overhead"] is None


def test_load_suite__smoke_merges_overrides_by_key_and_replaces_a_tolerance_whole(tmp_path: Path) -> None:
    body = {
        **TINY_SUITE,
        "smoke": {
            "bench": {"cpu": {"steps": 1, "overrides": {"model": {"depth": 2}}}},
            "tolerances": {"quality.probe_acc": {"rel": 0.5, "direction": "higher"}},
        },
    }
    suite = load_suite(write_yaml(tmp_path / "suite.yaml", body), smoke=True)
    (bench,) = suite.bench
    assert bench.steps == 1 and bench.warmup == 1  # merged key by key
    assert bench.trainer.overrides["model.depth"] == 2 and bench.trainer.overrides["data.name"] == "digits"
    tol = suite.tolerances["quality.probe_acc"]
    assert (tol.kind, tol.amount) == ("rel", 0.5)  # not {rel, abs}: replaced whole
    assert suite.tolerances["bench_cpu.img_per_s"].amount == 0.9


def test_load_suite__each_section_adds_the_trainer_keys_it_sets_itself(tmp_path: Path) -> None:
    body = {**TINY_SUITE, "overhead": {"overrides": TINY_SUITE["quality"]["overrides"], "cpus": 2}}
    suite = load_suite(write_yaml(tmp_path / "suite.yaml", body))
    assert suite.bench[0].trainer.overrides["train.device"] == "cpu"
    assert suite.quality is not None and suite.quality.trainer.overrides["train.progress"] is False
    assert suite.overhead is not None and suite.overhead.timeout_s == 600.0
    assert suite.overhead.trainer.overrides["train.num_threads"] == 2


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"bench": {"cpu": {"stepz": 3}}}, "bench.cpu.stepz"),
        ({"bench": {"gpu": {}}}, "bench.gpu"),
        ({"quality": {"overrides": {"mask.ratoi": 0.3}}}, "quality.overrides.mask.ratoi"),
        ({"quality": {"overrides": {"mask.ratio": 2.0}}}, "quality.overrides.mask.ratio"),
        ({"quality": {"preset": "fmnist_tpu"}}, "quality.preset"),
        ({"quality": {"seeds": []}}, "quality.seeds"),
        ({"overhead": {"enabled": "yes"}}, "overhead.enabled"),
        ({"tolerances": {"bench_cpu.img_per_sec": {"rel": 0.1, "direction": "higher"}}}, "img_per_sec"),
        ({"tolerances": {"quality.probe_acc": {"rel": 0.1, "abs": 0.1, "direction": "higher"}}}, "probe_acc"),
        ({"tolerances": {"quality.probe_acc": {"abs": -1, "direction": "higher"}}}, "quality.probe_acc.abs"),
        ({"tolerances": {"quality.probe_acc": {"abs": 0.1, "direction": "up"}}}, "direction"),
        ({"smoke": {"quality": {"overrides": {"train.epochs": -1}}}}, "smoke.quality.overrides.train.epochs"),
        ({"smoke": {"bench": {"cpu": {"steps": 0}}}}, "smoke.bench.cpu.steps"),
        ({"baseline": {"window": 0}}, "baseline.window"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_load_suite__invalid_key_is_one_line_naming_file_and_key(
    tmp_path: Path, body: dict, key: str
) -> None:
    path = write_yaml(tmp_path / "suite.yaml", {**TINY_SUITE, **body})
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert str(path) in message and key in message and "\n" not in message


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            {"bench": {"cpu": {"stepz": 3}}},
            "key 'bench.cpu.stepz': unknown key (did you mean 'steps'?); allowed: enabled, preset, "
            "overrides, steps, warmup, peak_size",
        ),
        ({"smoke": {"qualty": {}}}, "key 'smoke.qualty': unknown key (did you mean 'quality'?)"),
        (
            {"quality": {"seeds": [0, -1]}},
            "key 'quality.seeds': item 1: Input should be greater than or equal",
        ),
        ({"quality": {"seeds": [0, 0]}}, "key 'quality.seeds': repeats a seed"),
        ({"bench": [1]}, "key 'bench': expected a mapping, got list"),
        (
            {"overhead": {"timeout_s": "30"}},
            "key 'overhead.timeout_s': Input should be a valid number, got '30'",
        ),
        (
            {"quality": {"overrides": {"mask.ratoi": 0.3}}},
            "key 'quality.overrides.mask.ratoi': unknown trainer config key (did you mean 'mask.ratio'?)",
        ),
        (
            {"bench": {"cpu": {"overrides": {"train.batch_size": 0}}}},
            "key 'bench.cpu.overrides.train.batch_size': ",
        ),
        ({"quality": {"overrides": {"train.seed": 3}}}, "key 'quality.overrides.train.seed': seeds are set"),
        (
            {"tolerances": {"bench_cpu.img_per_sec": {"rel": 0.1, "direction": "higher"}}},
            "key 'tolerances.bench_cpu.img_per_sec': unknown metric (did you mean 'bench_cpu.img_per_s'?)",
        ),
        ({1: 2}, "key '1': "),
    ],
)
def test_load_suite__the_line_is_built_from_pydantics_location_and_message(
    tmp_path: Path, body: dict, line: str
) -> None:
    path = write_yaml(tmp_path / "suite.yaml", {**TINY_SUITE, **body})
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(err.value).startswith(f"{path}: {line}"), str(err.value)


@pytest.mark.parametrize(("smoke", "key"), [(False, "bench"), (True, "smoke")])
def test_load_suite__nothing_enabled_in_the_chosen_mode_is_invalid(
    tmp_path: Path, smoke: bool, key: str
) -> None:
    off = {"bench": {"enabled": False}, "quality": {"enabled": False}}
    body = {**TINY_SUITE, **off, "smoke": {"quality": {"enabled": True}}}
    if smoke:
        body = {**TINY_SUITE, "smoke": off}
    path = write_yaml(tmp_path / "suite.yaml", body)
    with pytest.raises(SuiteError, match=f"key '{key}': every section is disabled"):
        load_suite(path, smoke=smoke)
    other = load_suite(path, smoke=not smoke)
    assert other.bench or other.quality is not None


def test_load_suite__unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("bench: [\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    for name, fragment in (
        ("bad.yaml", "invalid YAML"),
        ("list.yaml", "mapping"),
        ("none.yaml", "cannot read"),
    ):
        with pytest.raises(SuiteError, match=fragment):
            load_suite(tmp_path / name)


def test_load_suite__imports_neither_torch_mlflow_nor_ray(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "suite.yaml", TINY_SUITE)
    code = (
        "import sys; from orchestrator.nightly.suite import load_suite; "
        f"load_suite({str(path)!r}, smoke=True); "
        "print(sorted(m for m in ('torch', 'mlflow', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
