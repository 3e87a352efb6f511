"""Tests for jepa_core.data: dataset discovery and parsing, subsets, preprocessing and augmentation."""

from __future__ import annotations

import gzip
import hashlib
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_core import data
from jepa_core.config import ConfigError

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
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST_DIR", tmp_path / "no-system-copy")
    # A file:// mirror that does not exist: the download path runs for real but fails without network.
    monkeypatch.setattr(data, "FASHION_MNIST_MIRROR", (tmp_path / "no-mirror").as_uri() + "/")
    return home


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


# ------------------------------------------------------------------------------------------------
# Fashion-MNIST
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


@pytest.mark.skipif(not SYSTEM_FMNIST.is_dir(), reason="dataset-fashion-mnist package not installed")
def test_load_tensor_dataset__returns_private_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JEPA_DATA", raising=False)
    first = data.load_tensor_dataset("fashion_mnist", "test")
    first.images.zero_()
    second = data.load_tensor_dataset("fashion_mnist", "test")
    assert int(second.images.sum()) > 0


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
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST_DIR", system)
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
    monkeypatch.setattr(data, "FASHION_MNIST_MIRROR", mirror.as_uri())
    monkeypatch.setattr(data, "FASHION_MNIST_SHA256", hashes)
    ds = data.load_tensor_dataset("fashion_mnist", "test")
    assert len(ds) == 3 and int(ds.images.max()) == 9
    cache = no_fmnist / ".cache" / "jepa_lab" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(hashes)


def test_download__sha256_mismatch_rejected_and_nothing_left(tmp_path: Path) -> None:
    served = tmp_path / "served.bin"
    served.write_bytes(b"not the archive you are looking for")
    dest_dir = tmp_path / "dest"
    dest = dest_dir / "train-images-idx3-ubyte.gz"
    with pytest.raises(data.DataError, match="sha256 mismatch"):
        data._download(served.as_uri(), dest, "0" * 64)
    assert list(dest_dir.iterdir()) == []

    good = hashlib.sha256(served.read_bytes()).hexdigest()
    data._download(served.as_uri(), dest, good)
    assert dest.read_bytes() == served.read_bytes() and list(dest_dir.iterdir()) == [dest]


def test_download__transfer_failure_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "file.gz"
    with pytest.raises(OSError):
        data._download((tmp_path / "absent").as_uri(), dest, "0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_read_idx__rejects_bad_magic_and_truncation(tmp_path: Path) -> None:
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x00\x00\x08\x0d" + b"\x00" * 16)
    with pytest.raises(data.DataError, match="IDX"):
        data._read_idx_pair(bad_magic, bad_magic)
    truncated = tmp_path / "short"
    truncated.write_bytes(_idx_bytes(np.zeros((2, 4, 4), np.uint8))[:-3])
    with pytest.raises(data.DataError, match="truncated"):
        data._read_idx_pair(truncated, truncated)


# ------------------------------------------------------------------------------------------------
# digits
# ------------------------------------------------------------------------------------------------


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


def test_load_tensor_dataset__unknown_name_or_split() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_tensor_dataset("mnist3d", "train")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_tensor_dataset("digits", "holdout")
    with pytest.raises(ValueError, match="unknown split"):  # the carved split never reads as the test split
        data.load_tensor_dataset("digits", "validation")


def test_balanced_subset__deterministic_balanced_sorted() -> None:
    labels = np.repeat(np.arange(4), [50, 30, 10, 10])
    chosen = data._balanced_subset(labels, 20, seed=5)
    assert np.array_equal(chosen, data._balanced_subset(labels, 20, seed=5))
    assert np.bincount(labels[chosen], minlength=4).tolist() == [5, 5, 5, 5]
    assert np.all(np.diff(chosen) > 0)
    # A class smaller than its share gives way to the others.
    small = data._balanced_subset(labels, 90, seed=0)
    assert np.bincount(labels[small], minlength=4).tolist() == [40, 30, 10, 10]
    assert len(data._balanced_subset(labels, 1000, seed=0)) == len(labels)
    with pytest.raises(ValueError):
        data._balanced_subset(labels, 0, seed=0)


# ------------------------------------------------------------------------------------------------
# Evaluation splits
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# CIFAR
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# Preprocessing and augmentation
# ------------------------------------------------------------------------------------------------


def test_preprocess__constant_image_at_mean_normalizes_to_zero() -> None:
    images = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
    mean, std = (128 / 255,) * 3, (0.25, 0.5, 1.0)
    out = data.preprocess(images, 8, mean, std)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 8, 8)
    assert float(out.abs().max()) < 1e-6
    resized = data.preprocess(images, 16, mean, std)
    assert resized.shape == (2, 3, 16, 16) and float(resized.abs().max()) < 1e-5


def test_preprocess__scales_and_normalizes_per_channel() -> None:
    images = torch.tensor([0, 255], dtype=torch.uint8).view(1, 2, 1, 1).expand(1, 2, 4, 4).contiguous()
    out = data.preprocess(images, 4, (0.5, 0.5), (0.5, 0.25))
    assert torch.allclose(out[0, 0], torch.full((4, 4), -1.0)) and torch.allclose(
        out[0, 1], torch.full((4, 4), 2.0)
    )


def test_random_resized_crop_aug__shape_dtype_and_seeded() -> None:
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    aug = data.RandomResizedCropAug(24, (0.5,) * 3, (0.25,) * 3, hflip=True)
    a = aug(images, torch.Generator().manual_seed(3))
    b = aug(images, torch.Generator().manual_seed(3))
    c = aug(images, torch.Generator().manual_seed(4))
    assert a.shape == (16, 3, 24, 24) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("size", [28, 32])
def test_random_resized_crop_aug__full_scale_equals_preprocess(size: int) -> None:
    images = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8)
    aug = data.RandomResizedCropAug(size, (0.3,), (0.4,), scale=(1.0, 1.0))
    expected = data.preprocess(images, size, (0.3,), (0.4,))
    assert torch.allclose(aug(images, torch.Generator().manual_seed(0)), expected, atol=1e-4)


def test_random_resized_crop_aug__full_scale_flip_mirrors() -> None:
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    aug = data.RandomResizedCropAug(28, (0.5,), (0.5,), scale=(1.0, 1.0), hflip=True)
    out = aug(images, torch.Generator().manual_seed(0))
    plain = data.preprocess(images, 28, (0.5,), (0.5,))
    same = (out - plain).abs().amax(dim=(1, 2, 3)) < 1e-4
    flipped = (out - plain.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-4
    assert bool((same | flipped).all()) and 0 < int(flipped.sum()) < 64


def test_random_resized_crop_aug__crop_boxes_follow_scale_and_ratio() -> None:
    aug = data.RandomResizedCropAug(28, (0.5,), (0.5,))
    theta = aug._sample_theta(20000, 28, 28, torch.Generator().manual_seed(0), torch.device("cpu"))
    area = theta[:, 0, 0] * theta[:, 1, 1]
    aspect = theta[:, 0, 0] / theta[:, 1, 1]
    assert float(area.min()) >= 0.3 - 1e-9 and float(area.max()) <= 1.0 + 1e-9
    assert float(aspect.min()) >= 3 / 4 - 1e-9 and float(aspect.max()) <= 4 / 3 + 1e-9
    # The box stays inside the image: |centre| + half-extent <= 1 in normalized coordinates.
    assert float((theta[:, 0, 2].abs() + theta[:, 0, 0].abs()).max()) <= 1.0 + 1e-9
    assert float((theta[:, 1, 2].abs() + theta[:, 1, 1].abs()).max()) <= 1.0 + 1e-9


def test_random_resized_crop_aug__batch_of_256_is_fast() -> None:
    images = torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8)
    aug = data.RandomResizedCropAug(28, (0.2860,), (0.3530,))
    aug(images)  # warm-up
    start = time.perf_counter()
    out = aug(images, torch.Generator().manual_seed(0))
    assert out.shape == (256, 1, 28, 28)
    assert time.perf_counter() - start < 0.5


# ------------------------------------------------------------------------------------------------
# TensorDataset, eval datasets, image folders
# ------------------------------------------------------------------------------------------------


def test_tensor_dataset__to_and_validation() -> None:
    ds = data.TensorDataset(
        torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64), 10, (0.5,), (0.5,)
    )
    moved = ds.to("cpu")
    assert len(moved) == 3 and moved.num_classes == 10 and moved.mean == (0.5,)
    with pytest.raises(ValueError):
        data.TensorDataset(torch.zeros(3, 1, 4, 4), torch.zeros(3, dtype=torch.int64), 10, (0.5,), (0.5,))


def test_eval_dataset__digits_preprocessed_items() -> None:
    ds = data.eval_dataset("digits", "test", None, image_size=16, subset=50, seed=1)
    assert len(ds) == 50
    image, label = ds[0]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32 and isinstance(label, int)
    source = data.load_tensor_dataset("digits", "test", subset=50, seed=1)
    expected = data.preprocess(source.images[:1], 16, source.mean, source.std)[0]
    assert torch.equal(image, expected) and label == int(source.labels[0])


def _write_image_folder(root: Path) -> None:
    from PIL import Image

    for split in ("train", "val"):
        for k, cls in enumerate(("cat", "dog")):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                pixels = np.full((40, 50, 3), 40 * k + 10 * i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


def test_image_folder_data__loaders_and_eval_dataset(tmp_path: Path) -> None:
    _write_image_folder(tmp_path)
    folder = data.ImageFolderData(str(tmp_path), image_size=16, hflip=True)
    assert folder.num_classes == 2 and folder.classes == ["cat", "dog"] and folder.mean == data.IMAGENET_MEAN
    images, labels = next(iter(folder.loader("train", batch_size=4, train=True, workers=0, seed=0)))
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.float32 and labels.dtype == torch.int64
    batches = list(folder.loader("val", batch_size=4, train=False, workers=0, seed=0))
    assert [b[0].shape[0] for b in batches] == [4, 2] and batches[0][1].tolist() == [0, 0, 0, 1]

    ev = data.eval_dataset("imagefolder", "test", str(tmp_path), image_size=16, subset=2, seed=0)
    assert len(ev) == 2 and sorted(int(ev[i][1]) for i in range(2)) == [0, 1]
    assert ev.num_classes == 2  # type: ignore[attr-defined]


def test_eval_splits__image_folder_carves_validation_from_train(tmp_path: Path) -> None:
    _write_image_folder(tmp_path)  # 6 images in train/, 6 in val/ (ImageNet's name for its test split)
    splits = data.eval_splits("imagefolder", str(tmp_path), val_size=2)
    assert (len(splits.validation), len(splits.probe_train), len(splits.test)) == (2, 4, 6)
    assert not set(splits.validation.tolist()) & set(splits.probe_train.tolist())
    val = data.eval_split_dataset("imagefolder", "validation", str(tmp_path), 16, splits)
    assert len(val) == 2 and sorted(int(val[i][1]) for i in range(2)) == [0, 1]  # one per class
    folder = data.ImageFolderData(str(tmp_path), 16).dataset("train", train=False)
    assert [val[i][0].tolist() for i in range(2)] == [folder[int(j)][0].tolist() for j in splits.validation]
    test = data.eval_split_dataset("imagefolder", "test", str(tmp_path), 16, splits)
    assert len(test) == 6 and test.num_classes == 2  # type: ignore[attr-defined]


def test_image_folder_data__missing_root(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match="--set data.root=DIR"):
        data.ImageFolderData(None)
    with pytest.raises(data.DataError, match="val or test"):
        data.ImageFolderData(str(tmp_path))


def test_preprocess__float_input_not_modified() -> None:
    images = torch.full((1, 1, 4, 4), 0.75)
    out = data.preprocess(images, 4, (0.25,), (0.5,))
    assert torch.allclose(out, torch.ones_like(out)) and float(images.max()) == 0.75
