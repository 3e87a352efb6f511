"""Does fmnist_cpu learn? Real Fashion-MNIST, the real preset, in the same test run as its baselines."""

from __future__ import annotations

import json

import pytest
import torch

from jepa_core.config import build_config
from jepa_core.data import DataError, load_tensor_dataset
from jepa_core.evaluate import raw_pixel_probe
from jepa_core.train import EvalData, train


@pytest.mark.slow
def test_fmnist_cpu__beats_random_init_and_raw_pixels(tmp_path):
    try:
        load_tensor_dataset("fashion_mnist", "test")
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST unavailable: {exc}")
    cfg = build_config("fmnist_cpu", overrides=[{"train.progress": False}])
    trained = train(cfg, tmp_path / "trained")
    random_init = train(build_config("fmnist_cpu", overrides=[{"train.epochs": 0}]), tmp_path / "init")
    # The same held-out split and preprocessing as the encoders' probes, on flattened pixels.
    sets = EvalData(cfg, torch.device("cpu")).sets
    raw = raw_pixel_probe(*sets["train"], *sets["test"])
    figures = {"trained": trained["probe_acc"], "random_init": random_init["probe_acc"], "raw_pixels": raw,
               "wall_time_s": trained["wall_time_s"]}
    print(json.dumps(figures))
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    assert trained["probe_acc"] >= random_init["probe_acc"] + 0.03, figures
    assert trained["probe_acc"] > raw, figures
