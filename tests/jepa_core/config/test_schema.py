from __future__ import annotations

import copy

import pytest

from jepa_core.config import (
    DATASETS,
    Config,
    ConfigError,
    MaskConfig,
    build_config,
    config_keys,
    default_val_size,
    validate,
)


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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"data.crop_scale_min": 0.9, "data.crop_scale_max": 0.5},
            "config key 'data.crop_scale_min' must be <= data.crop_scale_max=0.5, got 0.9",
        ),
        (
            {"data.crop_scale_max": 1.5},
            "config key 'data.crop_scale_max' must be less than or equal to 1, got 1.5",
        ),
        (
            {"mask.target_aspect_min": 2.0},
            "config key 'mask.target_aspect_min' must be <= mask.target_aspect_max=1.5, got 2.0",
        ),
        (
            {"mask.context_scale_min": 0.9, "mask.context_scale_max": 0.8},
            "config key 'mask.context_scale_min' must be <= mask.context_scale_max=0.8, got 0.9",
        ),
        (
            {"predictor.num_heads": 5},
            "config key 'predictor.num_heads' must divide predictor.embed_dim=96, got 5",
        ),
        (
            {"data.image_size": 4, "model.patch_size": 4},
            "config key 'data.image_size' must give a patch grid of at least 2x2, got 4",
        ),
        (
            {"data.image_size": 8, "model.patch_size": 4},
            "config key 'mask.min_context' must be in [1, 3] for a 4-patch grid, got 4",
        ),
        ({"mask.num_targets": 17}, "config key 'mask.num_targets' must be less than or equal to 16, got 17"),
        (
            {"train.checkpoint_every": 0},
            "config key 'train.checkpoint_every' must be greater than or equal to 1, got 0",
        ),
        (
            {"data.name": "mnist"},
            "config key 'data.name' must be 'fashion_mnist', 'digits', 'cifar10', 'cifar100', "
            "'imagenet' or 'imagefolder', got 'mnist'",
        ),
        (
            {"train.device": "cuda:x"},
            "config key 'train.device' must be auto, cpu, cuda or cuda:N, got 'cuda:x'",
        ),
    ],
)
def test_build_config__rule_messages(override, message):
    with pytest.raises(ConfigError) as err:
        build_config(overrides=[override])
    assert str(err.value) == message


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1"])
def test_train_device__accepts_the_documented_forms(device):
    assert build_config(overrides=[{"train.device": device}]).train.device == device


def test_data_name__choices_are_datasets():
    for name in DATASETS:
        assert build_config(overrides=[{"data.name": name}]).data.name == name


def test_to_flat__keys_and_values_of_the_defaults():
    flat = Config().to_flat()
    assert tuple(flat) == config_keys()
    assert flat["mask.ratio"] == 0.4 and flat["optim.warmup_epochs"] == 1.0
    assert isinstance(flat["optim.warmup_epochs"], float) and isinstance(flat["train.epochs"], int)
    assert flat["data.root"] is None and flat["data.subset"] is None and flat["predictor.one_pass"] is False
    assert Config().to_dict()["mask"] == {
        k.partition(".")[2]: v for k, v in flat.items() if k.startswith("mask.")
    }


def test_config__is_mutable_and_validate_checks_changes():
    cfg = build_config()
    cfg.mask.ratio = 0.6  # callers set values after loading (trainable, bench); not validated on assignment
    validate(cfg)
    cfg.mask.ratio = 1.5
    with pytest.raises(ConfigError, match=r"config key 'mask\.ratio' must be less than 1"):
        validate(cfg)


def test_config__deepcopy_is_independent_and_equal():
    cfg = build_config("fmnist_cpu")
    other = copy.deepcopy(cfg)
    assert other == cfg
    other.predictor.one_pass = True
    assert other != cfg and cfg.predictor.one_pass is False


def test_config__model_copy_replaces_one_section():
    cfg = build_config()
    other = cfg.model_copy(update={"mask": cfg.mask.model_copy(update={"ratio": 0.6})})
    assert other.mask.ratio == 0.6 and cfg.mask.ratio == 0.4 and other.train == cfg.train


def test_sections__refuse_unknown_keys_when_built_directly():
    with pytest.raises(ValueError, match="Extra inputs"):
        MaskConfig(ratoi=0.5)


@pytest.mark.parametrize(("num_train", "expected"), [(60000, 6000), (4000, 500), (1438, 359), (2, 1)])
def test_default_val_size(num_train, expected):
    assert default_val_size(num_train) == expected
