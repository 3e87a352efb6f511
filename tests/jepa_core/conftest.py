from __future__ import annotations

import pytest

from jepa_core.config import Config, build_config

# A tiny digits configuration: real training, a few seconds on a CPU.
TINY = {
    "data.name": "digits",
    "data.image_size": 16,
    "model.embed_dim": 32,
    "model.depth": 2,
    "model.num_heads": 2,
    "predictor.depth": 1,
    "predictor.embed_dim": 16,
    "predictor.num_heads": 2,
    "train.batch_size": 64,
    "train.steps_per_epoch": 4,
    "train.progress": False,
    "train.device": "cpu",
    "eval.train_subset": 400,
    "eval.test_subset": 200,
    "optim.warmup_epochs": 1,
}


@pytest.fixture
def tiny_config() -> Config:
    return build_config(overrides=[TINY])
