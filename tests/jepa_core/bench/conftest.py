"""Shapes and command lines shared by the bench's tests."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
# A tiny reference_112-shaped model; one thread, because two threads on a shared 2-core machine mostly wait on
# each other at this size.
TINY = [
    "data.image_size=16",
    "model.patch_size=4",
    "model.embed_dim=32",
    "model.depth=2",
    "model.num_heads=2",
    "predictor.depth=2",
    "predictor.embed_dim=16",
    "predictor.num_heads=2",
    "train.batch_size=4",
    "train.num_threads=1",
]


def bench_args(*extra: str) -> list[str]:
    """``python -m jepa_core.bench`` arguments for :data:`TINY` on the CPU, two timed steps after one."""
    sets = [a for kv in TINY for a in ("--set", kv)]
    return ["--preset", "reference_112", *sets, "--device", "cpu", "--steps", "2", "--warmup", "1", *extra]


def positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


@pytest.fixture
def keep_torch_threads() -> Iterator[None]:
    """``main`` sets torch's thread count for its process (``train.num_threads=1`` here); later tests in this
    pytest process (the fmnist_cpu quality run among them) must get the machine's count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
