"""Does fmnist_cpu learn? Real Fashion-MNIST, the real preset, in the same test run as its baselines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_core.config import build_config
from jepa_core.data import DataError, load_tensor_dataset
from jepa_core.evaluate import raw_pixel_probe
from jepa_core.feeds import EvalData
from jepa_core.train import train

# Dotted overrides (JSON) for a dry run of the protocol on other data or sizes, e.g. '{"data.name": "digits",
# "data.image_size": 16, "model.patch_size": 4, "train.epochs": 1}'. The margins below only mean something for
# the preset as shipped.
OVERRIDES_ENV = "JEPA_QUALITY_SET"


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict[str, float]:
    """Trains fmnist_cpu once (13.5 min on a 2-vCPU AMD EPYC) and measures both baselines on the same images.

    All three figures are linear probes fitted on the same training images outside the validation split and
    scored on the same official test images: the trainer's ``test_probe_acc`` for the trained and the
    random-init encoder, and a probe on flattened pixels of those very images.
    """
    overrides = {"train.progress": False, **json.loads(os.environ.get(OVERRIDES_ENV, "{}"))}
    cfg = build_config("fmnist_cpu", overrides=[overrides])
    try:
        load_tensor_dataset(cfg.data.name, "test", cfg.data.root)
    except DataError as exc:
        pytest.skip(f"{cfg.data.name} unavailable: {exc}")
    out = tmp_path_factory.mktemp("quality")
    trained = train(cfg, out / "trained")
    init_cfg = build_config("fmnist_cpu", overrides=[overrides, {"train.epochs": 0}])
    random_init = train(init_cfg, out / "init")
    eval_data = EvalData(cfg, torch.device("cpu"))
    # The random-init run scored the same images (the splits never depend on the training keys).
    init_splits = EvalData(init_cfg, torch.device("cpu")).splits
    for split in ("probe_train", "test"):
        assert np.array_equal(eval_data.splits.indices(split), init_splits.indices(split))
    raw = raw_pixel_probe(*eval_data.sets["probe_train"], *eval_data.sets["test"])
    result = {
        "trained": trained["test_probe_acc"],
        "random_init": random_init["test_probe_acc"],
        "raw_pixels": raw,
        "trained_val": trained["probe_acc"],  # for the record; the assertions read test figures only
        "wall_time_s": trained["wall_time_s"],
    }
    print("fmnist_cpu quality:", json.dumps(result))
    if os.environ.get("JEPA_QUALITY_FIGURES"):  # where CI or a developer wants the figures kept
        Path(os.environ["JEPA_QUALITY_FIGURES"]).write_text(json.dumps(result))
    return result


# Measured on the 2-vCPU AMD EPYC with AVX-512: +7.2 points over random init, +3.3 over raw pixels. The
# margins asserted leave about 2 points for another machine's arithmetic; the goals (+10, +5) are
# not met yet.
INIT_MARGIN, RAW_MARGIN = 0.05, 0.015


@pytest.mark.slow
def test_fmnist_cpu__beats_its_random_init_by_5_points(figures):
    assert figures["trained"] >= figures["random_init"] + INIT_MARGIN, figures


@pytest.mark.slow
def test_fmnist_cpu__beats_a_linear_probe_on_raw_pixels_by_1_5_points(figures):
    assert figures["trained"] >= figures["raw_pixels"] + RAW_MARGIN, figures
