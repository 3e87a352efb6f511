from __future__ import annotations

import subprocess
import sys

import pytest

from jepa_core.config import PRESETS, ConfigError, build_config, parse_set


def test_build_config__layers_apply_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("mask:\n  ratio: 0.3\ntrain.epochs: 7\n")
    cfg = build_config("fmnist_cpu", [f], [parse_set(["mask.ratio=0.55"])])
    assert cfg.mask.ratio == 0.55  # --set wins over the file
    assert cfg.train.epochs == 7  # the file wins over the preset
    assert cfg.model.embed_dim == PRESETS["fmnist_cpu"]["model.embed_dim"]  # the preset wins over defaults


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_build_config__every_preset_is_valid(preset):
    cfg = build_config(preset)
    assert cfg.data.image_size % cfg.model.patch_size == 0


def test_to_flat__round_trips_through_from_dict():
    cfg = build_config("fmnist_gpu")
    flat = cfg.to_flat()
    assert flat["ema.momentum_start"] == cfg.ema.momentum_start
    assert build_config(overrides=[flat]) == cfg


def test_parse_set__reads_yaml_scalars():
    assert parse_set(["a.b=1", "c.d=0.5", "e.f=true", "g.h=null", "i.j=cpu"]) == {
        "a.b": 1,
        "c.d": 0.5,
        "e.f": True,
        "g.h": None,
        "i.j": "cpu",
    }


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"mask.ratoi": 0.5}, "mask.ratoi"),
        ({"nosuch.section": 1}, "nosuch.section"),
        ({"mask.ratio": 1.0}, "mask.ratio"),
        ({"mask.ratio": 0}, "mask.ratio"),
        ({"ema.momentum_start": 1.5}, "ema.momentum_start"),
        ({"ema.momentum_end": -0.1}, "ema.momentum_end"),
        ({"predictor.depth": 0}, "predictor.depth"),
        ({"predictor.depth": 2.5}, "predictor.depth"),
        ({"model.depth": "deep"}, "model.depth"),
        ({"data.image_size": 30}, "data.image_size"),
        ({"model.num_heads": 5}, "model.num_heads"),
        ({"loss.kind": "l3"}, "loss.kind"),
        ({"train.device": "tpu"}, "train.device"),
        ({"optim.lr": float("nan")}, "optim.lr"),
        ({"train.progress": "maybe"}, "train.progress"),
        ({"train.epochs": True}, "train.epochs"),
    ],
)
def test_build_config__bad_value_names_the_key(override, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        build_config(overrides=[override])


def test_build_config__unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        build_config("nope")


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
