"""Tests for jepa_core.data.digits: the fixed, disjoint split of scikit-learn's digits."""

from __future__ import annotations

import torch

from jepa_core import data


def test_load_tensor_dataset__digits_split_disjoint_and_complete() -> None:
    train = data.load_tensor_dataset("digits", "train")
    test = data.load_tensor_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert int(train.images.max()) == 255 and train.num_classes == 10
    # All 1797 digits are distinct images, so disjoint splits share no pixel rows.
    flat_train = {bytes(row) for row in train.images.reshape(len(train), -1).numpy()}
    flat_test = {bytes(row) for row in test.images.reshape(len(test), -1).numpy()}
    assert len(flat_train) == len(train) and len(flat_test) == len(test) and not flat_train & flat_test
    again = data.load_tensor_dataset("digits", "test")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
