"""Does fmnist_cpu learn? Real Fashion-MNIST, the real preset, in the same test run as its baselines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from jepa_core.config import build_config
from jepa_core.data import DataError, load_tensor_dataset
from jepa_core.evaluate import raw_pixel_probe
from jepa_core.train import EvalData, train


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict[str, float]:
    """Trains fmnist_cpu once (~9 minutes on 2 CPU cores) and measures both baselines on the same split."""
    try:
        load_tensor_dataset("fashion_mnist", "test")
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST unavailable: {exc}")
    out = tmp_path_factory.mktemp("quality")
    cfg = build_config("fmnist_cpu", overrides=[{"train.progress": False}])
    trained = train(cfg, out / "trained")
    random_init = train(build_config("fmnist_cpu", overrides=[{"train.epochs": 0}]), out / "init")
    # The same held-out split and preprocessing as the encoders' probes, on flattened pixels.
    sets = EvalData(cfg, torch.device("cpu")).sets
    raw = raw_pixel_probe(*sets["train"], *sets["test"])
    result = {
        "trained": trained["probe_acc"],
        "random_init": random_init["probe_acc"],
        "raw_pixels": raw,
        "wall_time_s": trained["wall_time_s"],
    }
    print("fmnist_cpu quality:", json.dumps(result))
    if os.environ.get("JEPA_QUALITY_FIGURES"):  # where CI or a developer wants the figures kept
        Path(os.environ["JEPA_QUALITY_FIGURES"]).write_text(json.dumps(result))
    return result


@pytest.mark.slow
def test_fmnist_cpu__beats_its_random_init_by_3_points(figures):
    assert figures["trained"] >= figures["random_init"] + 0.03, figures


@pytest.mark.slow
def test_fmnist_cpu__beats_a_linear_probe_on_raw_pixels(figures):
    assert figures["trained"] > figures["raw_pixels"], figures
