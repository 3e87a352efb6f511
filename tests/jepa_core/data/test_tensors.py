"""Tests for jepa_core.data.tensors: TensorDataset, loading by name and split, balanced subsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_core import data
from jepa_core.data.tensors import balanced_subset

SYSTEM_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not SYSTEM_FMNIST.is_dir(), reason="dataset-fashion-mnist package not installed")
def test_load_tensor_dataset__returns_private_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JEPA_DATA", raising=False)
    first = data.load_tensor_dataset("fashion_mnist", "test")
    first.images.zero_()
    second = data.load_tensor_dataset("fashion_mnist", "test")
    assert int(second.images.sum()) > 0


def test_load_tensor_dataset__unknown_name_or_split() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_tensor_dataset("mnist3d", "train")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_tensor_dataset("digits", "holdout")
    with pytest.raises(ValueError, match="unknown split"):  # the carved split never reads as the test split
        data.load_tensor_dataset("digits", "validation")


def test_balanced_subset__deterministic_balanced_sorted() -> None:
    labels = np.repeat(np.arange(4), [50, 30, 10, 10])
    chosen = balanced_subset(labels, 20, seed=5)
    assert np.array_equal(chosen, balanced_subset(labels, 20, seed=5))
    assert np.bincount(labels[chosen], minlength=4).tolist() == [5, 5, 5, 5]
    assert np.all(np.diff(chosen) > 0)
    # A class smaller than its share gives way to the others.
    small = balanced_subset(labels, 90, seed=0)
    assert np.bincount(labels[small], minlength=4).tolist() == [40, 30, 10, 10]
    assert len(balanced_subset(labels, 1000, seed=0)) == len(labels)
    with pytest.raises(ValueError):
        balanced_subset(labels, 0, seed=0)


def test_tensor_dataset__to_and_validation() -> None:
    ds = data.TensorDataset(
        torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64), 10, (0.5,), (0.5,)
    )
    moved = ds.to("cpu")
    assert len(moved) == 3 and moved.num_classes == 10 and moved.mean == (0.5,)
    with pytest.raises(ValueError):
        data.TensorDataset(torch.zeros(3, 1, 4, 4), torch.zeros(3, dtype=torch.int64), 10, (0.5,), (0.5,))
