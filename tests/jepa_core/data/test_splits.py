"""Tests for jepa_core.data.splits: the validation, probe-train and test splits and their datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_core import data
from jepa_core.config import ConfigError


def _pixel_rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(row) for row in images.reshape(images.shape[0], -1).numpy()}


def test_eval_splits__digits_disjoint_balanced_and_fixed() -> None:
    splits = data.eval_splits("digits", None, train_subset=400, test_subset=200)
    assert (len(splits.validation), len(splits.probe_train), len(splits.test)) == (359, 400, 200)
    assert not set(splits.validation.tolist()) & set(splits.probe_train.tolist())
    for split in data.EVAL_SPLITS:
        assert np.all(np.diff(splits.indices(split)) > 0)
    # Disjoint as images too: all 1797 digits are distinct and the official splits share none.
    train, test = data.load_tensor_dataset("digits", "train"), data.load_tensor_dataset("digits", "test")
    assert data.EvalSplits.source("validation") == data.EvalSplits.source("probe_train") == "train"
    assert data.EvalSplits.source("test") == "test"
    rows = [
        _pixel_rows(train.images[splits.validation]),
        _pixel_rows(train.images[splits.probe_train]),
        _pixel_rows(test.images[splits.test]),
    ]
    assert [len(r) for r in rows] == [359, 400, 200]
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]
    counts = np.bincount(train.labels.numpy()[splits.validation], minlength=10)
    assert counts.max() - counts.min() <= 1  # class-balanced
    # Validation depends only on the labels and val_size: not on the probe or test subset sizes.
    other = data.eval_splits("digits", None, train_subset=100, test_subset=None)
    assert np.array_equal(other.validation, splits.validation) and len(other.test) == len(test)
    assert len(other.probe_train) == 100
    assert not set(other.probe_train.tolist()) & set(splits.validation.tolist())
    with pytest.raises(ValueError, match="unknown evaluation split"):
        splits.indices("val")


def test_eval_split_dataset__digits_items_are_the_indexed_images() -> None:
    splits = data.eval_splits("digits", None, val_size=50, train_subset=30, test_subset=20)
    train = data.load_tensor_dataset("digits", "train")
    for split, size in (("validation", 50), ("probe_train", 30), ("test", 20)):
        ds = data.eval_split_dataset("digits", split, None, 16, splits)
        assert len(ds) == size and ds.num_classes == 10  # type: ignore[attr-defined]
    val = data.eval_split_dataset("digits", "validation", None, 16, splits)
    image, label = val[3]
    index = int(splits.validation[3])
    expected = data.preprocess(train.images[index : index + 1], 16, train.mean, train.std)[0]
    assert torch.equal(image, expected) and label == int(train.labels[index])


@pytest.mark.parametrize(
    ("num_train", "expected"),
    [(60000, 6000), (20000, 2000), (3000, 500), (1438, 359), (1000, 250), (3, 1), (2, 1)],
)
def test_default_val_size__ten_percent_at_least_500_at_most_a_quarter(num_train: int, expected: int) -> None:
    assert data.default_val_size(num_train) == expected


def test_carve_eval_splits__sizes_follow_val_size_and_subsets() -> None:
    train_labels = np.arange(6000) % 10
    test_labels = np.arange(1000) % 10
    default = data.carve_eval_splits(train_labels, test_labels)
    assert (len(default.validation), len(default.probe_train), len(default.test)) == (600, 5400, 1000)
    assert np.array_equal(np.sort(np.concatenate([default.validation, default.probe_train])), np.arange(6000))
    sized = data.carve_eval_splits(
        train_labels, test_labels, val_size=1000, train_subset=9999, test_subset=100
    )
    assert (len(sized.validation), len(sized.probe_train), len(sized.test)) == (1000, 5000, 100)
    assert np.bincount(train_labels[sized.validation]).tolist() == [100] * 10
    with pytest.raises(ConfigError, match="eval.val_size"):
        data.carve_eval_splits(train_labels, test_labels, val_size=6000)
    with pytest.raises(data.DataError):
        data.carve_eval_splits(train_labels[:1], test_labels)


def test_eval_dataset__digits_preprocessed_items() -> None:
    ds = data.eval_dataset("digits", "test", None, image_size=16, subset=50, seed=1)
    assert len(ds) == 50
    image, label = ds[0]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32 and isinstance(label, int)
    source = data.load_tensor_dataset("digits", "test", subset=50, seed=1)
    expected = data.preprocess(source.images[:1], 16, source.mean, source.std)[0]
    assert torch.equal(image, expected) and label == int(source.labels[0])


def test_eval_splits__image_folder_carves_validation_from_train(image_folder_root: Path) -> None:
    root = str(image_folder_root)  # 6 images in train/, 6 in val/ (ImageNet's name for its test split)
    splits = data.eval_splits("imagefolder", root, val_size=2)
    assert (len(splits.validation), len(splits.probe_train), len(splits.test)) == (2, 4, 6)
    assert not set(splits.validation.tolist()) & set(splits.probe_train.tolist())
    val = data.eval_split_dataset("imagefolder", "validation", root, 16, splits)
    assert len(val) == 2 and sorted(int(val[i][1]) for i in range(2)) == [0, 1]  # one per class
    folder = data.ImageFolderData(root, 16).dataset("train", train=False)
    assert [val[i][0].tolist() for i in range(2)] == [folder[int(j)][0].tolist() for j in splits.validation]
    test = data.eval_split_dataset("imagefolder", "test", root, 16, splits)
    assert len(test) == 6 and test.num_classes == 2  # type: ignore[attr-defined]
