"""Datasets, deterministic preprocessing and on-device augmentation for the JEPA trainer.

Small datasets (Fashion-MNIST, sklearn digits, CIFAR-10/100) are held whole as uint8 tensors so a trial can
move them onto the training device once and augment batches there, without a DataLoader. ImageNet-style
folders are too large for that and stream from disk through torchvision instead.

Evaluation uses three splits (:func:`eval_splits`): a fixed *validation* split carved from the official
training split, the *probe-train* images (the rest of the training split, or a subset) that fit the probe
and the kNN bank, and the official *test* split. Pretraining uses no labels and sees the whole training split.

Nothing here unpickles: IDX and CIFAR *binary* files are parsed with numpy, and the python-pickle CIFAR
release is refused on purpose because a pickle from an untrusted download can run arbitrary code.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import math
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from jepa_core.config import ConfigError, default_val_size

__all__ = [
    "DATASET_NAMES",
    "EVAL_SPLITS",
    "OFFICIAL_SPLITS",
    "DataError",
    "EvalSplits",
    "ImageFolderData",
    "RandomResizedCropAug",
    "TensorDataset",
    "carve_eval_splits",
    "default_val_size",
    "eval_dataset",
    "eval_split_dataset",
    "eval_splits",
    "load_tensor_dataset",
    "preprocess",
]

DATASET_NAMES: tuple[str, ...] = ("fashion_mnist", "digits", "cifar10", "cifar100")
"""Names accepted by :func:`load_tensor_dataset` (``eval_dataset`` also takes ``"imagefolder"``)."""

# Per-channel constants for pixels scaled to [0, 1]. Digits values were measured on the 80% train split
# defined below; the others are the usual published figures for each train set.
_NORM: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "digits": ((0.3050,), (0.3757,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Module-level (not baked into functions) so tests and unusual installs can point them elsewhere.
FASHION_MNIST_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_SHA256: dict[str, str] = {
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
}
_DOWNLOAD_TIMEOUT_S = 60.0
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dims
_IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dim


class DataError(Exception):
    """Dataset cannot be found/loaded; the message is one clear line telling the user what to do."""


# --------------------------------------------------------------------------------------------------
# In-memory datasets
# --------------------------------------------------------------------------------------------------


@dataclass
class TensorDataset:
    """A whole small dataset held as tensors, so it can live on the training device.

    Attributes:
        images: uint8 ``[N, C, H, W]`` at the dataset's original resolution.
        labels: int64 ``[N]``.
        num_classes: Number of classes of the full dataset (not just those present in a subset).
        mean: Per-channel normalization mean for pixels scaled to [0, 1].
        std: Per-channel normalization std for pixels scaled to [0, 1].
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        # Fail at construction rather than deep inside a training step with a cryptic shape error.
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 [N,C,H,W], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be int64 [N], got {self.labels.dtype} {tuple(self.labels.shape)}")
        if len(self.mean) != self.images.shape[1] or len(self.std) != self.images.shape[1]:
            raise ValueError("mean/std must have one entry per image channel")

    def to(self, device: torch.device | str) -> TensorDataset:
        """Return a copy of this dataset with its tensors on ``device``."""
        return TensorDataset(
            images=self.images.to(device),
            labels=self.labels.to(device),
            num_classes=self.num_classes,
            mean=self.mean,
            std=self.std,
        )

    def __len__(self) -> int:
        return int(self.images.shape[0])


def load_tensor_dataset(
    name: str,
    split: str,
    root: str | None = None,
    *,
    subset: int | None = None,
    seed: int = 0,
) -> TensorDataset:
    """Load a small dataset whole, as uint8 tensors on the CPU.

    Args:
        name: One of ``"fashion_mnist"``, ``"digits"``, ``"cifar10"``, ``"cifar100"``.
        split: ``"train"`` or ``"test"``.
        root: Folder holding the dataset (required for CIFAR; first place looked for Fashion-MNIST).
        subset: If given, keep this many samples, chosen deterministically from ``seed`` and balanced
            across classes (round-robin over classes in a seeded random order).
        seed: Seed for the subset choice; ignored without ``subset``.

    Returns:
        The dataset; its tensors are fresh copies that the caller may modify.

    Raises:
        DataError: The dataset cannot be found or parsed.
        ValueError: Unknown name/split or a non-positive subset.
    """
    name = _canonical_name(name)
    images, labels, num_classes = _load_arrays(name, _canonical_split(split), root)
    if subset is not None:
        index = _balanced_subset(labels, subset, seed)
        images, labels = images[index], labels[index]
    else:
        # The parsed arrays are cached and shared across calls; hand out private copies.
        images, labels = images.copy(), labels.copy()
    mean, std = _NORM[name]
    return TensorDataset(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(labels.astype(np.int64)),
        num_classes=num_classes,
        mean=mean,
        std=std,
    )


def _load_arrays(name: str, split: str, root: str | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The cached, read-only ``(images, labels, num_classes)`` of a canonical dataset name and split."""
    if name == "fashion_mnist":
        return (*_load_fashion_mnist(split, root), 10)
    if name == "digits":
        return (*_load_digits(split), 10)
    if name in ("cifar10", "cifar100"):
        return (*_load_cifar(name, split, root), _CIFAR_LAYOUT[name].num_classes)
    raise ValueError(name)  # pragma: no cover - _canonical_name already rejected it


def _canonical_name(name: str) -> str:
    canonical = name.strip().lower().replace("-", "_")
    if canonical not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    return canonical


def _canonical_split(split: str) -> str:
    """One of the dataset's own two splits, ``"train"`` or ``"test"`` (see :data:`OFFICIAL_SPLITS`)."""
    # "val" is accepted as a synonym because ImageNet-style folders say val where these datasets say test.
    # It names the official held-out split, never the validation split carved by eval_splits.
    canonical = {"train": "train", "test": "test", "val": "test"}.get(split.strip().lower())
    if canonical is None:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    return canonical


def _balanced_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a seeded, class-balanced subset of ``size`` samples, in ascending order.

    Samples are shuffled, ranked within their class, and taken by rank, so every class contributes
    equally (up to its own size) and the choice only depends on ``seed`` and the labels.
    """
    if size <= 0:
        raise ValueError(f"subset must be positive, got {size}")
    n = labels.shape[0]
    if size >= n:
        return np.arange(n)
    perm = np.random.default_rng(seed).permutation(n)
    shuffled = labels[perm]
    by_class = np.argsort(shuffled, kind="stable")
    sorted_labels = shuffled[by_class]
    rank_sorted = np.arange(n) - np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty(n, dtype=np.int64)
    rank[by_class] = rank_sorted
    # Stable sort on rank keeps the shuffled order among equal ranks, so ties break randomly, not by class.
    chosen = perm[np.argsort(rank, kind="stable")[:size]]
    return np.sort(chosen)


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files)
# --------------------------------------------------------------------------------------------------

_FASHION_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _cache_dir() -> Path:
    return Path.home() / ".cache" / "jepa_lab" / "fashion-mnist"


def _idx_file(folder: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``folder``: gzipped or not, with either '-' or '.' before 'idx'."""
    dotted = stem.replace("-idx", ".idx")
    for candidate in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def _idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    images_stem, labels_stem = _FASHION_FILES[split]
    images, labels = _idx_file(folder, images_stem), _idx_file(folder, labels_stem)
    return (images, labels) if images is not None and labels is not None else None


def _fashion_candidates(root: str | None) -> list[Path]:
    """Folders to search, in the project's documented order (cache last, before any download)."""
    bases: list[Path] = []
    if root:
        bases.append(Path(root).expanduser())
    env = os.environ.get("JEPA_DATA")
    if env:
        bases.append(Path(env).expanduser())
    folders: list[Path] = []
    for base in bases:
        # Accept the folder with the files itself, or a data root holding the dataset in a subfolder
        # (ours, or torchvision's layout so an existing torchvision download is reused).
        folders += [base, base / "fashion-mnist", base / "fashion_mnist", base / "FashionMNIST" / "raw"]
    folders += [SYSTEM_FASHION_MNIST_DIR, _cache_dir()]
    return folders


def _load_fashion_mnist(split: str, root: str | None) -> tuple[np.ndarray, np.ndarray]:
    for folder in _fashion_candidates(root):
        pair = _idx_pair(folder, split)
        if pair is not None:
            return _read_idx_pair(*pair)
    try:
        _download_fashion_mnist(_cache_dir())
    except (DataError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(
            "Fashion-MNIST not found: pass --set data.root=DIR, set JEPA_DATA=DIR, or run "
            f"'apt-get install dataset-fashion-mnist' (download from {FASHION_MNIST_MIRROR} failed: {reason})"
        ) from exc
    pair = _idx_pair(_cache_dir(), split)
    if pair is None:  # pragma: no cover - the download just put the files there
        raise DataError(f"Fashion-MNIST download finished but {_cache_dir()} lacks the {split} files")
    return _read_idx_pair(*pair)


def _download_fashion_mnist(dest_dir: Path) -> None:
    """Fetch all four Fashion-MNIST archives into ``dest_dir``, each verified by sha256."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    base = FASHION_MNIST_MIRROR if FASHION_MNIST_MIRROR.endswith("/") else FASHION_MNIST_MIRROR + "/"
    for filename, sha256 in FASHION_MNIST_SHA256.items():
        dest = dest_dir / filename
        if not dest.is_file():
            _download(base + filename, dest, sha256)


def _download(url: str, dest: Path, sha256: str) -> None:
    """Download ``url`` to ``dest`` atomically, keeping it only if its sha256 matches.

    The bytes go to a temporary file beside ``dest`` and are renamed into place only after the hash
    checks out, so an interrupted or tampered download never leaves a file that a later run would trust.

    Raises:
        DataError: The hash does not match.
        OSError: The transfer failed (``urllib.error.URLError`` is an ``OSError``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise DataError(f"sha256 mismatch for {url}: expected {sha256}, got {actual}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx_cached(str(images_path), *_stamp(images_path))
    labels = _read_idx_cached(str(labels_path), *_stamp(labels_path))
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{images_path} / {labels_path}: expected 3-d images and 1-d labels")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels"
        )
    return images[:, None, :, :], labels


def _stamp(path: Path) -> tuple[int, int]:
    # Part of the cache key, so a file replaced on disk (e.g. re-downloaded) is parsed again.
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    """Parse one IDX file (unsigned-byte data); cached because trials and evals reload the same files.

    The returned array is read-only because it is shared between callers.
    """
    del mtime_ns, size  # only part of the cache key
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 4:
        raise DataError(f"{path} is not an IDX file (too short)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC):
        raise DataError(f"{path} is not an unsigned-byte IDX file (magic {magic:#010x})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) != header + math.prod(dims):
        raise DataError(f"{path} is truncated or corrupt: header says {dims}, file has {len(raw)} bytes")
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    array.flags.writeable = False
    return array


# --------------------------------------------------------------------------------------------------
# sklearn digits
# --------------------------------------------------------------------------------------------------

_DIGITS_TEST_FRACTION = 0.2
_DIGITS_SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All digits as uint8 ``[N,1,8,8]``, their labels, and the boolean test mask of the fixed split."""
    # Imported lazily: sklearn is slow to import and only this zero-setup fallback needs it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16; stretch to the full uint8 range so every dataset shares one pixel scale.
    images = np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    n = labels.shape[0]
    # The split is fixed (not the subset seed) so train and test never overlap whatever seed a trial uses.
    perm = np.random.default_rng(_DIGITS_SPLIT_SEED).permutation(n)
    is_test = np.zeros(n, dtype=bool)
    is_test[perm[: round(n * _DIGITS_TEST_FRACTION)]] = True
    for array in (images, labels, is_test):
        array.flags.writeable = False
    return images[:, None, :, :], labels, is_test


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels, is_test = _digits_arrays()
    mask = is_test if split == "test" else ~is_test
    return images[mask], labels[mask]


# --------------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (binary release only)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CifarLayout:
    folder: str  # folder the binary archive extracts to
    pickle_folder: str  # folder of the python-pickle release, only to recognise it and say why it is refused
    pickle_marker: str  # a file that exists only in the pickle release
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_bytes: int
    archive: str
    num_classes: int


_CIFAR_LAYOUT: dict[str, _CifarLayout] = {
    "cifar10": _CifarLayout(
        folder="cifar-10-batches-bin",
        pickle_folder="cifar-10-batches-py",
        pickle_marker="data_batch_1",
        train=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        test=("test_batch.bin",),
        label_bytes=1,
        archive="cifar-10-binary.tar.gz",
        num_classes=10,
    ),
    "cifar100": _CifarLayout(
        folder="cifar-100-binary",
        pickle_folder="cifar-100-python",
        pickle_marker="train",
        train=("train.bin",),
        test=("test.bin",),
        # Two label bytes per record: coarse (20 superclasses) then fine (100 classes); we use fine.
        label_bytes=2,
        archive="cifar-100-binary.tar.gz",
        num_classes=100,
    ),
}
_CIFAR_PIXELS = 3 * 32 * 32


def _load_cifar(name: str, split: str, root: str | None) -> tuple[np.ndarray, np.ndarray]:
    layout = _CIFAR_LAYOUT[name]
    if not root:
        raise DataError(
            f"{name} needs its binary release ({layout.archive}) unpacked: pass --set data.root=DIR"
        )
    base = Path(root).expanduser()
    files = layout.train if split == "train" else layout.test
    present: list[Path] = []
    # Accept root pointing at the extracted folder itself or at its parent.
    for folder in (base, base / layout.folder):
        present = [folder / f for f in files if (folder / f).is_file()]
        if present:
            break
    if not present:
        for folder in (base, base / layout.pickle_folder):
            if (folder / layout.pickle_marker).is_file():
                raise DataError(
                    f"{folder} holds the python-pickle {name} release, which this project never loads "
                    f"(unpickling can run code); download the binary version ({layout.archive}) instead"
                )
        raise DataError(
            f"{name} binary files ({', '.join(files)}) not found in {base} or {base / layout.folder}; "
            f"extract {layout.archive} there or pass --set data.root=DIR"
        )
    if len(present) < len(files):
        # A partly extracted archive would silently train on a fraction of the data; say so.
        missing = sorted(set(files) - {p.name for p in present})
        warnings.warn(
            f"{name}: {folder} lacks {', '.join(missing)}; using the other batches only", stacklevel=3
        )
    parts = [_read_cifar_file(str(path), layout.label_bytes, *_stamp(path)) for path in present]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and int(labels.max()) >= layout.num_classes:
        raise DataError(
            f"{name}: label {int(labels.max())} out of range in {folder}; is this the right dataset?"
        )
    return images, labels


@functools.lru_cache(maxsize=8)
def _read_cifar_file(path: str, label_bytes: int, mtime_ns: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CIFAR binary batch into read-only uint8 ``[N,3,32,32]`` images and int64 labels."""
    del mtime_ns  # only part of the cache key
    record = label_bytes + _CIFAR_PIXELS
    if size == 0 or size % record:
        raise DataError(f"{path}: size {size} is not a multiple of the {record}-byte CIFAR record")
    try:
        raw = np.fromfile(path, dtype=np.uint8).reshape(-1, record)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    labels = raw[:, label_bytes - 1].astype(np.int64)  # the last label byte is the fine label for CIFAR-100
    images = np.ascontiguousarray(raw[:, label_bytes:]).reshape(-1, 3, 32, 32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


# --------------------------------------------------------------------------------------------------
# Preprocessing and augmentation (batched, on any device)
# --------------------------------------------------------------------------------------------------


def _to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B,C,H,W]`` -> float32 in [0, 1]; floating input is taken as already scaled."""
    if images.ndim != 4:
        raise ValueError(f"expected a [B,C,H,W] batch, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    if images.is_floating_point():
        # Always a copy: callers normalize the result in place and must not touch the input.
        return images.to(torch.float32, copy=True)
    raise TypeError(f"expected uint8 or floating images, got {images.dtype}")


def _normalize_(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries for {x.shape[1]} channels")
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def preprocess(
    images_uint8: torch.Tensor,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """Deterministic eval preprocessing: scale to [0,1], resize if needed, normalize.

    Args:
        images_uint8: uint8 ``[B,C,H,W]`` on any device.
        image_size: Output side; resized bilinearly with antialiasing unless already that size.
        mean: Per-channel mean for [0,1] pixels.
        std: Per-channel std for [0,1] pixels.

    Returns:
        float32 ``[B,C,image_size,image_size]`` on the input's device.
    """
    x = _to_unit_float(images_uint8)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        )
    return _normalize_(x, mean, std)


class RandomResizedCropAug:
    """I-JEPA's augmentation, batched on the images' device: random resized crop and optional h-flip.

    Every sample gets its own crop box, expressed as one affine map and applied to the whole batch by a
    single ``F.affine_grid`` + ``F.grid_sample`` call, so the cost does not grow with Python-level loops.
    Crop boxes are continuous (sub-pixel), which is a harmless departure from torchvision's integer boxes.
    Resampling is bilinear without antialiasing, so a crop much larger than the output can alias; that is
    fine for the small datasets this serves (crops are at most ~2x the output side there).
    """

    _TRIES = 10  # like torchvision: resample a box that does not fit, then fall back to the whole image

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        scale: tuple[float, float] = (0.3, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: bool = False,
    ) -> None:
        """Configure the augmentation.

        Args:
            image_size: Output side length S.
            mean: Per-channel mean for [0,1] pixels.
            std: Per-channel std for [0,1] pixels.
            scale: Range of the crop's area as a fraction of the image area.
            ratio: Range of the crop's width/height aspect ratio (sampled log-uniformly).
            hflip: Also flip each sample horizontally with probability 1/2.
        """
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must satisfy 0 < low <= high, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio}")
        self.image_size = int(image_size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.hflip = bool(hflip)

    def __repr__(self) -> str:
        return (
            f"RandomResizedCropAug(image_size={self.image_size}, scale={self.scale}, ratio={self.ratio}, "
            f"hflip={self.hflip})"
        )

    def _fallback_fracs(self, height: int, width: int) -> tuple[float, float]:
        """Width/height fractions of the centred fallback box for an ``height x width`` image."""
        aspect = width / height
        if aspect < self.ratio[0]:
            return 1.0, aspect / self.ratio[0]
        if aspect > self.ratio[1]:
            return self.ratio[1] / aspect, 1.0
        return 1.0, 1.0

    def _sample_theta(
        self, batch: int, height: int, width: int, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """Affine matrices ``[B,2,3]`` mapping output coords to input coords (normalized to [-1, 1])."""
        # Draw on the generator's device (a CPU generator cannot feed CUDA sampling); without one, draw on
        # the images' device so a GPU step needs no host round trip.
        device = generator.device if generator is not None else device
        u = torch.rand(batch, self._TRIES, 5, generator=generator, device=device, dtype=torch.float64)
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[..., 0]
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
        # Fractions of the input's width/height; aspect is in pixels, as in torchvision.
        frac_w = torch.sqrt(area * aspect * height / width)
        frac_h = torch.sqrt(area / aspect * width / height)
        fits = (frac_w <= 1.0) & (frac_h <= 1.0)
        # First fitting try per sample (argmax returns the first maximum).
        pick = fits.to(torch.int8).argmax(dim=1, keepdim=True)
        found = fits.any(dim=1)
        frac_w = frac_w.gather(1, pick).squeeze(1)
        frac_h = frac_h.gather(1, pick).squeeze(1)
        pos_x = u[..., 2].gather(1, pick).squeeze(1)
        pos_y = u[..., 3].gather(1, pick).squeeze(1)
        # No try fitted: torchvision's fallback, the largest centred box whose aspect is clamped into the
        # ratio range (the whole image when the image's own aspect is inside it).
        fallback_w, fallback_h = self._fallback_fracs(height, width)
        frac_w = torch.where(found, frac_w, torch.full_like(frac_w, fallback_w))
        frac_h = torch.where(found, frac_h, torch.full_like(frac_h, fallback_h))
        pos_x = torch.where(found, pos_x, torch.full_like(pos_x, 0.5))
        pos_y = torch.where(found, pos_y, torch.full_like(pos_y, 0.5))
        # Box centre anywhere that keeps the box inside the image; half-extent in [-1,1] units is frac.
        centre_x = (1.0 - frac_w) * (2.0 * pos_x - 1.0)
        centre_y = (1.0 - frac_h) * (2.0 * pos_y - 1.0)
        flip = torch.ones(batch, dtype=torch.float64, device=device)
        if self.hflip:
            flip = torch.where(u[:, 0, 4] < 0.5, -flip, flip)
        theta = torch.zeros(batch, 2, 3, dtype=torch.float64, device=device)
        theta[:, 0, 0] = frac_w * flip
        theta[:, 0, 2] = centre_x
        theta[:, 1, 1] = frac_h
        theta[:, 1, 2] = centre_y
        return theta

    def __call__(self, images_uint8: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch.

        Args:
            images_uint8: uint8 ``[B,C,H,W]`` on any device.
            generator: Source of randomness, on the CPU or on the images' device; the global RNG if None.

        Returns:
            Normalized float32 ``[B,C,S,S]`` on the images' device.
        """
        x = _to_unit_float(images_uint8)
        batch, channels, height, width = x.shape
        theta = self._sample_theta(batch, height, width, generator, x.device).to(
            device=x.device, dtype=x.dtype
        )
        size = (batch, channels, self.image_size, self.image_size)
        grid = F.affine_grid(theta, list(size), align_corners=False)
        # Border padding: samples stay inside the image, but edge rounding must not pull in zeros.
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return _normalize_(out, self.mean, self.std)


# --------------------------------------------------------------------------------------------------
# ImageNet-style folders (streamed from disk)
# --------------------------------------------------------------------------------------------------


class ImageFolderData:
    """ImageNet-style folders ``root/train/<class>/*`` and ``root/val/<class>/*``, streamed via torchvision.

    Attributes:
        root: The dataset root.
        image_size: Output side length.
        num_classes: Number of class folders under ``root/train`` (or the eval folder if there is no train).
        classes: Class folder names, sorted.
        mean: ImageNet normalization mean.
        std: ImageNet normalization std.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        image_size: int = 224,
        *,
        scale: tuple[float, float] = (0.3, 1.0),
        hflip: bool = False,
    ) -> None:
        """Index the class folders (cheap); images are only listed when a split is first used.

        Args:
            root: Folder holding ``train/`` and ``val/`` (or ``test/``).
            image_size: Output side length.
            scale: RandomResizedCrop area range for training batches.
            hflip: Also randomly flip training images horizontally.

        Raises:
            DataError: ``root`` is missing or has no split folder with class subfolders.
        """
        if not root:
            raise DataError(
                "imagefolder data needs root/train/<class>/ and root/val/<class>/: pass --set data.root=DIR"
            )
        self.root = Path(root).expanduser()
        self.image_size = int(image_size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.hflip = bool(hflip)
        self.mean: tuple[float, ...] = IMAGENET_MEAN
        self.std: tuple[float, ...] = IMAGENET_STD
        reference = self._split_dir("train", required=False) or self._split_dir("test", required=True)
        self.classes = sorted(entry.name for entry in os.scandir(reference) if entry.is_dir())
        if not self.classes:
            raise DataError(f"{reference} has no class subfolders (expected {reference}/<class>/*.jpg)")
        self.num_classes = len(self.classes)
        self._datasets: dict[tuple[str, bool], Dataset] = {}

    def _split_dir(self, split: str, *, required: bool) -> Path | None:
        names = ("train",) if _canonical_split(split) == "train" else ("val", "test")
        for name in names:
            if (self.root / name).is_dir():
                return self.root / name
        if required:
            raise DataError(f"no {' or '.join(names)} folder under {self.root} (pass --set data.root=DIR)")
        return None

    def transform(self, train: bool) -> Callable[[Any], torch.Tensor]:
        """The torchvision transform: random resized crop for training, resize + centre crop for eval."""
        # Imported lazily so importing this module does not pull in torchvision for tensor-only runs.
        from torchvision import transforms as T

        if train:
            steps: list[object] = [T.RandomResizedCrop(self.image_size, scale=self.scale)]
            if self.hflip:
                steps.append(T.RandomHorizontalFlip())
        else:
            # The conventional 224/256 resize-then-centre-crop ratio, scaled to the chosen size.
            steps = [T.Resize(round(self.image_size * 256 / 224)), T.CenterCrop(self.image_size)]
        steps += [T.ToTensor(), T.Normalize(self.mean, self.std)]
        return T.Compose(steps)

    def dataset(self, split: str, train: bool) -> Dataset:
        """The ``(float image [C,S,S], label)`` dataset of ``split`` with train or eval transforms."""
        from torchvision.datasets import ImageFolder

        key = (_canonical_split(split), bool(train))
        if key not in self._datasets:
            folder = self._split_dir(split, required=True)
            dataset = ImageFolder(str(folder), transform=self.transform(train))
            if dataset.classes != self.classes:
                raise DataError(
                    f"{folder} class folders differ from those of the train folder under {self.root}"
                )
            dataset.num_classes = self.num_classes  # type: ignore[attr-defined]  # eval code reads this
            self._datasets[key] = dataset
        return self._datasets[key]

    def loader(self, split: str, batch_size: int, train: bool, workers: int = 4, seed: int = 0) -> DataLoader:
        """A DataLoader of ``(float images [B,C,S,S], int64 labels [B])``.

        Args:
            split: ``"train"`` or ``"val"``/``"test"``.
            batch_size: Samples per batch.
            train: Random crops, shuffling and dropping the last partial batch (else deterministic eval).
            workers: Loader worker processes.
            seed: Seeds shuffling and, through the loader's base seed, the workers' augmentation RNG.
        """
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(
            self.dataset(split, train),
            batch_size=batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            generator=generator,
        )


# --------------------------------------------------------------------------------------------------
# Evaluation splits: validation, probe-train and test
# --------------------------------------------------------------------------------------------------

OFFICIAL_SPLITS: tuple[str, ...] = ("train", "test")
"""A dataset's own splits, as its files name them (``"val"``, ImageNet's folder, is read as ``"test"``)."""

EVAL_SPLITS: tuple[str, ...] = ("validation", "probe_train", "test")
"""The evaluation splits of :func:`eval_splits`: validation and probe-train are carved from the official
training split, test is the official test split."""

# Fixed, never a trial's train.seed: every trial of a sweep must be scored on the same validation images.
_EVAL_SPLIT_SEED = 0


@dataclass(frozen=True)
class EvalSplits:
    """Index sets of the three evaluation splits, each sorted ascending.

    ``validation`` and ``probe_train`` index the dataset's official training split and never share an index;
    ``test`` indexes its official test split. :meth:`source` says which.

    Attributes:
        validation: Fixed, class-balanced validation images (``probe_acc`` and ``knn_acc`` are scored here).
        probe_train: Training images outside validation that fit the probe and fill the kNN bank.
        test: Official test images, scored once at the end of a run.
    """

    validation: np.ndarray
    probe_train: np.ndarray
    test: np.ndarray

    def indices(self, split: str) -> np.ndarray:
        """The index set of ``split`` (one of :data:`EVAL_SPLITS`)."""
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown evaluation split {split!r}; expected one of {', '.join(EVAL_SPLITS)}")
        return getattr(self, split)

    @staticmethod
    def source(split: str) -> str:
        """The official split (``"train"`` or ``"test"``) that ``split``'s indices refer to."""
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown evaluation split {split!r}; expected one of {', '.join(EVAL_SPLITS)}")
        return "test" if split == "test" else "train"


def carve_eval_splits(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    *,
    val_size: int = 0,
    train_subset: int | None = None,
    test_subset: int | None = None,
) -> EvalSplits:
    """The three evaluation index sets, from the labels of a dataset's official splits.

    Validation is a class-balanced subset of the training split drawn with a fixed seed, so it depends only
    on the labels and ``val_size`` (never on a trial's seed, ``train_subset`` or ``test_subset``). The
    probe-train set is a class-balanced subset of the remaining training images; the test set one of the
    test split.

    Args:
        train_labels: Labels ``[N]`` of the official training split.
        test_labels: Labels ``[M]`` of the official test split.
        val_size: Validation images; 0 means :func:`default_val_size`.
        train_subset: Probe-train images (all training images outside validation if None or larger).
        test_subset: Test images (the whole test split if None or larger).

    Raises:
        jepa_core.config.ConfigError: ``val_size`` leaves no training image for the probe.
        DataError: The training or test split is empty.
    """
    num_train = int(train_labels.shape[0])
    if num_train < 2 or test_labels.shape[0] == 0:
        raise DataError(
            f"evaluation needs at least 2 training and 1 test image, got {num_train} and "
            f"{test_labels.shape[0]}"
        )
    size = val_size or default_val_size(num_train)
    if size >= num_train:
        raise ConfigError(
            f"config key 'eval.val_size' must leave training images for the probe: the training split has "
            f"{num_train}, got {val_size!r}"
        )
    validation = _balanced_subset(train_labels, size, _EVAL_SPLIT_SEED)
    rest = np.setdiff1d(np.arange(num_train), validation, assume_unique=True)
    probe_train = rest[_balanced_subset(train_labels[rest], train_subset or len(rest), _EVAL_SPLIT_SEED)]
    test = _balanced_subset(test_labels, test_subset or len(test_labels), _EVAL_SPLIT_SEED)
    return EvalSplits(validation=validation, probe_train=probe_train, test=test)


def _split_labels(name: str, split: str, root: str | None) -> np.ndarray:
    """The labels of one official split, without preprocessing any image."""
    if _is_image_folder(name):
        # A throwaway ImageFolderData: listing the files is the cost, the image size is irrelevant.
        dataset = ImageFolderData(root, 32).dataset(split, train=False)
        return np.asarray(dataset.targets, dtype=np.int64)  # type: ignore[attr-defined]
    return _load_arrays(_canonical_name(name), _canonical_split(split), root)[1]


def split_size(name: str, split: str, root: str | None) -> int:
    """How many images an official split (``"train"`` or ``"test"``) holds, read from its labels."""
    return len(_split_labels(name, split, root))


def eval_splits(
    name: str,
    root: str | None,
    *,
    val_size: int = 0,
    train_subset: int | None = None,
    test_subset: int | None = None,
) -> EvalSplits:
    """The validation, probe-train and test index sets of a dataset (see :func:`carve_eval_splits`).

    For tensor datasets the indices refer to :func:`load_tensor_dataset`'s ``"train"`` and ``"test"`` splits;
    for image folders to the files of ``root/train`` and ``root/val`` (or ``root/test``) in torchvision's
    ``ImageFolder`` order, so ImageNet's own ``val`` folder is the test split here and the validation split is
    carved from ``root/train``.

    Args:
        name: A tensor dataset name (see :data:`DATASET_NAMES`) or ``"imagefolder"`` (alias ``"imagenet"``).
        root: Dataset root.
        val_size: ``eval.val_size`` (0: :func:`default_val_size`).
        train_subset: ``eval.train_subset``.
        test_subset: ``eval.test_subset`` (None: the whole test split).

    Raises:
        DataError: The dataset cannot be found or a split is empty.
        jepa_core.config.ConfigError: ``val_size`` is too large for the training split.
    """
    return carve_eval_splits(
        _split_labels(name, "train", root),
        _split_labels(name, "test", root),
        val_size=val_size,
        train_subset=train_subset,
        test_subset=test_subset,
    )


# --------------------------------------------------------------------------------------------------
# Evaluation datasets
# --------------------------------------------------------------------------------------------------


class _PreprocessedTensorDataset(Dataset):
    """Per-item view of a :class:`TensorDataset` through :func:`preprocess`.

    Preprocessing is done lazily per item: upfront it would need ``N*C*S*S`` floats, which at large image
    sizes is far more memory than the uint8 originals.
    """

    def __init__(self, data: TensorDataset, image_size: int) -> None:
        self.data = data
        self.image_size = image_size
        self.num_classes = data.num_classes

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = preprocess(
            self.data.images[index : index + 1], self.image_size, self.data.mean, self.data.std
        )
        return image[0], int(self.data.labels[index])


def eval_dataset(
    name: str,
    split: str,
    root: str | None,
    image_size: int,
    subset: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Deterministically preprocessed ``(float image [C,S,S], int label)`` pairs for evaluation.

    Args:
        name: A tensor dataset name (see :data:`DATASET_NAMES`) or ``"imagefolder"`` (alias ``"imagenet"``).
        split: An official split, ``"train"`` or ``"test"`` (``"val"``, ImageNet's folder name, is read as
            ``"test"``); for the carved validation split see :func:`eval_split_dataset`.
        root: Dataset root, as for :func:`load_tensor_dataset` / :class:`ImageFolderData`.
        image_size: Output side length.
        subset: If given, a seeded class-balanced subset of this many samples.
        seed: Seed for the subset.

    Returns:
        A map-style dataset; it also has a ``num_classes`` attribute.
    """
    if _is_image_folder(name):
        folder = ImageFolderData(root, image_size)
        dataset = folder.dataset(split, train=False)
        if subset is None:
            return dataset
        targets = np.asarray(dataset.targets, dtype=np.int64)  # type: ignore[attr-defined]
        return _indexed_view(dataset, _balanced_subset(targets, subset, seed), folder.num_classes)
    data = load_tensor_dataset(name, split, root, subset=subset, seed=seed)
    return _PreprocessedTensorDataset(data, image_size)


def eval_split_dataset(
    name: str, split: str, root: str | None, image_size: int, splits: EvalSplits
) -> Dataset:
    """The preprocessed ``(float image [C,S,S], int label)`` pairs of one evaluation split.

    Args:
        name: As for :func:`eval_dataset`.
        split: ``"validation"``, ``"probe_train"`` or ``"test"`` (see :data:`EVAL_SPLITS`).
        root: Dataset root.
        image_size: Output side length.
        splits: The index sets, from :func:`eval_splits` on the same dataset.

    Returns:
        A map-style dataset with a ``num_classes`` attribute; item ``i`` is image ``splits.indices(split)[i]``
        of the official split ``EvalSplits.source(split)``.
    """
    index = splits.indices(split)
    source = EvalSplits.source(split)
    if _is_image_folder(name):
        folder = ImageFolderData(root, image_size)
        return _indexed_view(folder.dataset(source, train=False), index, folder.num_classes)
    canonical = _canonical_name(name)
    images, labels, num_classes = _load_arrays(canonical, source, root)
    mean, std = _NORM[canonical]
    data = TensorDataset(
        images=torch.from_numpy(np.ascontiguousarray(images[index])),
        labels=torch.from_numpy(labels[index].astype(np.int64)),
        num_classes=num_classes,
        mean=mean,
        std=std,
    )
    return _PreprocessedTensorDataset(data, image_size)


def _is_image_folder(name: str) -> bool:
    # "imagenet" is accepted too: it is just the best-known dataset laid out as image folders.
    return name.strip().lower() in ("imagefolder", "image_folder", "imagenet")


def _indexed_view(dataset: Dataset, index: np.ndarray, num_classes: int) -> Subset:
    view = Subset(dataset, index.tolist())
    view.num_classes = num_classes  # type: ignore[attr-defined]  # eval code reads this
    return view
