from __future__ import annotations

import subprocess
import sys

import pytest

from jepa_core.config import (
    PRESETS,
    Config,
    ConfigError,
    Overrides,
    build_config,
    dump_yaml,
    flatten,
    parse_set,
)


def test_build_config__layers_apply_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("mask:\n  ratio: 0.3\ntrain.epochs: 7\n")
    cfg = build_config("fmnist_cpu", [f], [parse_set(["mask.ratio=0.55"])])
    assert cfg.mask.ratio == 0.55  # --set wins over the file
    assert cfg.train.epochs == 7  # the file wins over the preset
    assert cfg.model.embed_dim == PRESETS["fmnist_cpu"]["model.embed_dim"]  # the preset wins over defaults


def test_build_config__later_files_win(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("train.epochs: 3\ntrain.seed: 5\n")
    second.write_text("train: {epochs: 4}\n")
    cfg = build_config(files=[first, second])
    assert (cfg.train.epochs, cfg.train.seed) == (4, 5)


def test_build_config__empty_file_is_no_overrides(tmp_path):
    f = tmp_path / "empty.yaml"
    f.write_text("")
    assert build_config(files=[f]) == Config()


def test_to_flat__round_trips_through_build_config():
    cfg = build_config("fmnist_gpu")
    flat = cfg.to_flat()
    assert flat["ema.momentum_start"] == cfg.ema.momentum_start
    assert build_config(overrides=[flat]) == cfg
    assert build_config(overrides=[cfg.to_dict()]) == cfg


def test_build_config__saved_config_missing_newer_keys_reads_them_as_defaults():
    # A checkpoint stores to_dict(); one written before a key (or a whole section) existed must still load.
    saved = build_config("fmnist_cpu").to_dict()
    del saved["predictor"]["one_pass"]
    del saved["loss"]
    cfg = build_config(overrides=[saved])
    assert cfg.predictor.one_pass is Config().predictor.one_pass and cfg.loss == Config().loss
    assert cfg.model.patch_size == PRESETS["fmnist_cpu"]["model.patch_size"]


def test_parse_set__reads_yaml_scalars():
    assert parse_set(["a.b=1", "c.d=0.5", "e.f=true", "g.h=null", "i.j=cpu"]) == {
        "a.b": 1,
        "c.d": 0.5,
        "e.f": True,
        "g.h": None,
        "i.j": "cpu",
    }


def test_parse_set__is_labelled_set():
    assert parse_set(["mask.ratio=0.5"]).source == "--set"
    assert type(dict(parse_set(["mask.ratio=0.5"]))) is dict  # a copy is an unlabelled layer


def test_flatten__nested_and_dotted_keys():
    assert flatten({"mask": {"ratio": 0.5}, "train.epochs": 2}) == {"mask.ratio": 0.5, "train.epochs": 2}


def test_dump_yaml__reads_back_to_the_same_config(tmp_path):
    cfg = build_config("fmnist_cpu", overrides=[{"data.root": "/data", "data.subset": 100}])
    f = tmp_path / "config.yaml"
    f.write_text(dump_yaml(cfg))
    assert build_config(files=[f]) == cfg


def test_build_config__unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        build_config("nope")


def test_build_config__only_the_final_value_of_a_key_is_checked():
    cfg = build_config(overrides=[{"train.epochs": "many"}, {"train.epochs": 3}])
    assert cfg.train.epochs == 3


def test_build_config__error_names_the_file(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("mask:\n  ratio: 1.5\n")
    with pytest.raises(ConfigError) as err:
        build_config("fmnist_cpu", [f], [parse_set(["train.epochs=2"])])
    assert str(err.value) == f"{f}: config key 'mask.ratio' must be less than 1, got 1.5"
    assert (err.value.key, err.value.source) == ("mask.ratio", str(f))


def test_build_config__error_names_set():
    with pytest.raises(ConfigError) as err:
        build_config(overrides=[parse_set(["mask.ratoi=0.5"])])
    assert str(err.value) == "--set: unknown config key 'mask.ratoi' (did you mean 'mask.ratio'?)"
    assert (err.value.key, err.value.source) == ("mask.ratoi", "--set")


def test_build_config__cross_key_error_names_the_layer_that_set_a_key_last(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("data.image_size: 28\n")
    with pytest.raises(ConfigError) as err:
        build_config("fmnist_cpu", [f], [parse_set(["model.patch_size=5"])])
    assert (
        str(err.value)
        == "--set: config key 'data.image_size' must be divisible by model.patch_size=5, got 28"
    )


def test_build_config__unlabelled_overrides_name_no_source():
    with pytest.raises(ConfigError) as err:
        build_config(overrides=[{"mask.ratio": 2}])
    assert str(err.value) == "config key 'mask.ratio' must be less than 1, got 2"
    assert err.value.source is None
    with pytest.raises(ConfigError, match=r"^tests: config key 'mask\.ratio'"):
        build_config(overrides=[Overrides({"mask.ratio": 2}, source="tests")])


def test_build_config__non_string_key_in_a_file_names_the_file(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("1: 2\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: config key 1 is not a string"):
        build_config(files=[f])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n", "a mapping of config keys"),
        ("a: [\n", "line 2: invalid YAML"),
        ("!!python/name:os.system\n", "invalid YAML"),
    ],
)
def test_build_config__unreadable_file_is_one_line(tmp_path, text, expected):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        build_config(files=[f])
    assert str(err.value).startswith(f"{f}") and expected in str(err.value) and "\n" not in str(err.value)


def test_import__does_not_import_torch():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, jepa_core.config; assert 'torch' not in sys.modules"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "mask.ratio=2"],
        ["--set", "mask.ratoi=0.5"],
        ["--preset", "nope"],
        ["--set", "novalue"],
        ["--config", "/nonexistent.yaml"],
    ],
)
def test_train_cli__bad_config_exits_2_with_one_line(args, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jepa_core.train", *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr
