"""Tests for jepa_core.data.cifar: the binary releases parsed, the pickle release refused."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_core import data


def _write_cifar_bin(path: Path, labels: list[int], label_bytes: int = 1) -> np.ndarray:
    """Write CIFAR binary records; pixel values encode (record, channel) so parsing errors show up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.zeros((len(labels), 3, 32, 32), dtype=np.uint8)
    records = []
    for i, label in enumerate(labels):
        for c in range(3):
            images[i, c] = (10 * i + c) % 256
        images[i, 0, 0, 1] = 200  # one distinct pixel to check row-major order within a channel
        head = bytes([label // 5 % 20, label] if label_bytes == 2 else [label])
        records.append(head + images[i].tobytes())
    path.write_bytes(b"".join(records))
    return images


def test_load_tensor_dataset__cifar10_binary(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    first = _write_cifar_bin(folder / "data_batch_1.bin", [3, 7])
    second = _write_cifar_bin(folder / "data_batch_2.bin", [1])
    test_images = _write_cifar_bin(folder / "test_batch.bin", [9, 0, 4])
    with pytest.warns(UserWarning, match="data_batch_3"):
        train = data.load_tensor_dataset("cifar10", "train", str(tmp_path))  # parent folder
    assert train.images.shape == (3, 3, 32, 32) and train.labels.tolist() == [3, 7, 1]
    assert torch.equal(train.images, torch.from_numpy(np.concatenate([first, second])))
    assert train.num_classes == 10 and len(train.mean) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test = data.load_tensor_dataset("cifar10", "test", str(folder))  # the folder itself
    assert test.labels.tolist() == [9, 0, 4] and torch.equal(test.images, torch.from_numpy(test_images))


def test_load_tensor_dataset__cifar100_uses_fine_label(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-binary"
    images = _write_cifar_bin(folder / "test.bin", [42, 99], label_bytes=2)
    ds = data.load_tensor_dataset("cifar100", "test", str(tmp_path))
    assert ds.labels.tolist() == [42, 99] and ds.num_classes == 100
    assert torch.equal(ds.images, torch.from_numpy(images))


def test_load_tensor_dataset__cifar_pickle_only_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"\x80\x04would-be-pickle")
    with pytest.raises(data.DataError, match="binary version"):
        data.load_tensor_dataset("cifar10", "train", str(tmp_path))
    with pytest.raises(data.DataError, match="binary version"):
        data.load_tensor_dataset("cifar10", "train", str(folder))


def test_load_tensor_dataset__cifar_missing_root(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match="--set data.root=DIR"):
        data.load_tensor_dataset("cifar10", "train")
    with pytest.raises(data.DataError, match="--set data.root=DIR"):
        data.load_tensor_dataset("cifar100", "test", str(tmp_path))


def test_load_tensor_dataset__cifar_bad_record_size(tmp_path: Path) -> None:
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(data.DataError, match="record"):
        data.load_tensor_dataset("cifar10", "test", str(tmp_path))
