"""Small datasets held whole as uint8 tensors, and the registry that loads them by name.

:func:`load_tensor_dataset` dispatches on the dataset name to its source module (``fashion_mnist``,
``digits``, ``cifar``), reads the official ``"train"`` or ``"test"`` split, optionally keeps a seeded
class-balanced subset (:func:`balanced_subset`), and returns a :class:`TensorDataset` that a trial can move
onto the training device once, so batches are augmented there without a DataLoader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from jepa_core.data.cifar import CIFAR_LAYOUTS, load_cifar
from jepa_core.data.digits import load_digits
from jepa_core.data.fashion_mnist import load_fashion_mnist

__all__ = [
    "DATASET_NAMES",
    "TensorDataset",
    "balanced_subset",
    "canonical_name",
    "canonical_split",
    "load_arrays",
    "load_tensor_dataset",
    "select_tensor_dataset",
]

DATASET_NAMES: tuple[str, ...] = ("fashion_mnist", "digits", "cifar10", "cifar100")
"""Names accepted by :func:`load_tensor_dataset` (``eval_dataset`` also takes ``"imagefolder"``)."""

# Per-channel constants for pixels scaled to [0, 1]. Digits values were measured on the 80% train split
# of jepa_core.data.digits; the others are the usual published figures for each train set.
_NORM: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "digits": ((0.3050,), (0.3757,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


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
    name = canonical_name(name)
    images, labels, num_classes = load_arrays(name, canonical_split(split), root)
    if subset is not None:
        index = balanced_subset(labels, subset, seed)
        images, labels = images[index], labels[index]
    else:
        # The parsed arrays are cached and shared across calls; hand out private copies.
        images, labels = images.copy(), labels.copy()
    return _tensor_dataset(name, images, labels, num_classes)


def select_tensor_dataset(name: str, split: str, root: str | None, index: np.ndarray) -> TensorDataset:
    """The images ``index`` (in that order) of one official split, as a :class:`TensorDataset` of copies.

    Args:
        name: As for :func:`load_tensor_dataset`.
        split: ``"train"`` or ``"test"``.
        root: As for :func:`load_tensor_dataset`.
        index: Integer indices into the split.
    """
    name = canonical_name(name)
    images, labels, num_classes = load_arrays(name, canonical_split(split), root)
    return _tensor_dataset(name, images[index], labels[index], num_classes)


def _tensor_dataset(name: str, images: np.ndarray, labels: np.ndarray, num_classes: int) -> TensorDataset:
    """Wrap arrays the caller no longer shares, with the canonical dataset ``name``'s normalization."""
    mean, std = _NORM[name]
    return TensorDataset(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(labels.astype(np.int64)),
        num_classes=num_classes,
        mean=mean,
        std=std,
    )


def load_arrays(name: str, split: str, root: str | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The ``(images, labels, num_classes)`` of a canonical dataset name and split.

    The arrays may be a source's cached, read-only ones, shared between callers: copy before modifying.
    """
    if name == "fashion_mnist":
        return (*load_fashion_mnist(split, root), 10)
    if name == "digits":
        return (*load_digits(split), 10)
    if name in ("cifar10", "cifar100"):
        return (*load_cifar(name, split, root), CIFAR_LAYOUTS[name].num_classes)
    raise ValueError(name)  # pragma: no cover - canonical_name already rejected it


def canonical_name(name: str) -> str:
    """``name`` as one of :data:`DATASET_NAMES` (case and ``-``/``_`` aside); ValueError if unknown."""
    canonical = name.strip().lower().replace("-", "_")
    if canonical not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    return canonical


def canonical_split(split: str) -> str:
    """``split`` as one of a dataset's own two splits, as its files name them: ``"train"`` or ``"test"``."""
    # "val" is accepted as a synonym because ImageNet-style folders say val where these datasets say test.
    # It names the official held-out split, never the validation split carved by eval_splits.
    canonical = {"train": "train", "test": "test", "val": "test"}.get(split.strip().lower())
    if canonical is None:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    return canonical


def balanced_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
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
