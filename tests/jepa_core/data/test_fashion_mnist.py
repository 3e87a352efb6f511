"""Tests for jepa_core.data.fashion_mnist: where the IDX files are found, downloaded and how they parse."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_core import data
from jepa_core.data import fashion_mnist
from jepa_core.data.fashion_mnist import read_idx_pair

SYSTEM_FMNIST = Path("/usr/share/datasets/fashion-mnist")


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (big-endian header: magic then one uint32 per dim)."""
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_fake_fmnist(folder: Path, n: int = 6, fill: int = 7, compress: bool = True) -> np.ndarray:
    """Write a tiny IDX dataset (both splits) whose pixels are all ``fill``; returns the labels."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.arange(n, dtype=np.uint8) % 10
    images = np.full((n, 28, 28), fill, dtype=np.uint8)
    for prefix in ("train", "t10k"):
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            payload = _idx_bytes(array)
            if compress:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(payload))
            else:
                (folder / stem).write_bytes(payload)
    return labels


@pytest.fixture
def no_fmnist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Hide every real Fashion-MNIST source: no env var, no system package, an empty home cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("JEPA_DATA", raising=False)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_FASHION_MNIST_DIR", tmp_path / "no-system-copy")
    # A file:// mirror that does not exist: the download path runs for real but fails without network.
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_MIRROR", (tmp_path / "no-mirror").as_uri() + "/")
    return home


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not SYSTEM_FMNIST.is_dir(), reason="dataset-fashion-mnist package not installed")
def test_load_tensor_dataset__system_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JEPA_DATA", raising=False)
    train = data.load_tensor_dataset("fashion_mnist", "train")
    test = data.load_tensor_dataset("fashion_mnist", "test")
    assert len(train) == 60000 and len(test) == 10000
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    assert train.labels.dtype == torch.int64 and set(train.labels.unique().tolist()) == set(range(10))
    assert train.num_classes == 10 and train.mean == (0.2860,) and train.std == (0.3530,)

    sub_a = data.load_tensor_dataset("fashion_mnist", "train", subset=500, seed=1)
    sub_b = data.load_tensor_dataset("fashion_mnist", "train", subset=500, seed=1)
    sub_c = data.load_tensor_dataset("fashion_mnist", "train", subset=500, seed=2)
    assert len(sub_a) == 500
    assert torch.equal(sub_a.images, sub_b.images) and torch.equal(sub_a.labels, sub_b.labels)
    assert not torch.equal(sub_a.images, sub_c.images)
    assert torch.bincount(sub_a.labels, minlength=10).tolist() == [50] * 10


def test_load_tensor_dataset__jepa_data_env_folder_or_parent(no_fmnist: Path, tmp_path: Path) -> None:
    direct = tmp_path / "direct"
    _write_fake_fmnist(direct, n=4, fill=11)
    parent = tmp_path / "parent"
    _write_fake_fmnist(parent / "fashion-mnist", n=5, fill=12, compress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JEPA_DATA", str(direct))
        ds = data.load_tensor_dataset("fashion_mnist", "train")
        assert len(ds) == 4 and int(ds.images[0, 0, 0, 0]) == 11
        mp.setenv("JEPA_DATA", str(parent))
        ds = data.load_tensor_dataset("fashion_mnist", "test")
        assert len(ds) == 5 and int(ds.images.max()) == 12 and ds.labels.tolist() == [0, 1, 2, 3, 4]


def test_load_tensor_dataset__root_before_env_before_system(
    no_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env, system = tmp_path / "root", tmp_path / "env", tmp_path / "system"
    _write_fake_fmnist(root, fill=1)
    _write_fake_fmnist(env, fill=2)
    _write_fake_fmnist(system, fill=3)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_FASHION_MNIST_DIR", system)
    monkeypatch.setenv("JEPA_DATA", str(env))
    assert int(data.load_tensor_dataset("fashion_mnist", "train", str(root)).images[0, 0, 0, 0]) == 1
    assert int(data.load_tensor_dataset("fashion_mnist", "train").images[0, 0, 0, 0]) == 2
    # A root without the files falls through to the next place rather than failing.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert int(data.load_tensor_dataset("fashion_mnist", "train", str(empty)).images[0, 0, 0, 0]) == 2
    monkeypatch.delenv("JEPA_DATA")
    assert int(data.load_tensor_dataset("fashion_mnist", "train").images[0, 0, 0, 0]) == 3


def test_load_tensor_dataset__missing_fashion_mnist_names_all_three_ways(no_fmnist: Path) -> None:
    with pytest.raises(data.DataError) as info:
        data.load_tensor_dataset("fashion_mnist", "train")
    message = str(info.value)
    assert "\n" not in message
    for way in ("--set data.root=DIR", "JEPA_DATA=DIR", "apt-get install dataset-fashion-mnist"):
        assert way in message
    assert "download" in message and "failed" in message
    cache = no_fmnist / ".cache" / "jepa_lab" / "fashion-mnist"
    assert not cache.exists() or not any(cache.iterdir())


def test_load_tensor_dataset__downloads_into_cache_and_verifies(
    no_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    _write_fake_fmnist(mirror, n=3, fill=9)
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_MIRROR", mirror.as_uri())
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_SHA256", hashes)
    ds = data.load_tensor_dataset("fashion_mnist", "test")
    assert len(ds) == 3 and int(ds.images.max()) == 9
    cache = no_fmnist / ".cache" / "jepa_lab" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(hashes)


def test_read_idx__rejects_bad_magic_and_truncation(tmp_path: Path) -> None:
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x00\x00\x08\x0d" + b"\x00" * 16)
    with pytest.raises(data.DataError, match="IDX"):
        read_idx_pair(bad_magic, bad_magic)
    truncated = tmp_path / "short"
    truncated.write_bytes(_idx_bytes(np.zeros((2, 4, 4), np.uint8))[:-3])
    with pytest.raises(data.DataError, match="truncated"):
        read_idx_pair(truncated, truncated)
