"""Evaluation splits (validation, probe-train, test) and the preprocessed datasets built on them.

:func:`eval_splits` carves a fixed *validation* split from a dataset's official training split, takes the
*probe-train* images (the rest of the training split, or a subset) that fit the probe and the kNN bank, and
the official *test* split. Pretraining uses no labels and sees the whole training split.
:func:`eval_dataset` and :func:`eval_split_dataset` serve ``(image, label)`` pairs with the deterministic
preprocessing that matches training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from jepa_core.config import ConfigError, default_val_size
from jepa_core.data.augment import preprocess
from jepa_core.data.files import DataError
from jepa_core.data.image_folder import ImageFolderData, is_image_folder
from jepa_core.data.tensors import (
    TensorDataset,
    balanced_subset,
    canonical_name,
    canonical_split,
    load_arrays,
    load_tensor_dataset,
    select_tensor_dataset,
)

__all__ = [
    "EVAL_SPLITS",
    "EvalSplits",
    "carve_eval_splits",
    "eval_dataset",
    "eval_split_dataset",
    "eval_splits",
    "split_size",
]

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
    validation = balanced_subset(train_labels, size, _EVAL_SPLIT_SEED)
    rest = np.setdiff1d(np.arange(num_train), validation, assume_unique=True)
    probe_train = rest[balanced_subset(train_labels[rest], train_subset or len(rest), _EVAL_SPLIT_SEED)]
    test = balanced_subset(test_labels, test_subset or len(test_labels), _EVAL_SPLIT_SEED)
    return EvalSplits(validation=validation, probe_train=probe_train, test=test)


def _split_labels(name: str, split: str, root: str | None) -> np.ndarray:
    """The labels of one official split, without preprocessing any image."""
    if is_image_folder(name):
        # A throwaway ImageFolderData: listing the files is the cost, the image size is irrelevant.
        dataset = ImageFolderData(root, 32).dataset(split, train=False)
        return np.asarray(dataset.targets, dtype=np.int64)  # type: ignore[attr-defined]
    return load_arrays(canonical_name(name), canonical_split(split), root)[1]


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
    if is_image_folder(name):
        folder = ImageFolderData(root, image_size)
        dataset = folder.dataset(split, train=False)
        if subset is None:
            return dataset
        targets = np.asarray(dataset.targets, dtype=np.int64)  # type: ignore[attr-defined]
        return _indexed_view(dataset, balanced_subset(targets, subset, seed), folder.num_classes)
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
    if is_image_folder(name):
        folder = ImageFolderData(root, image_size)
        return _indexed_view(folder.dataset(source, train=False), index, folder.num_classes)
    return _PreprocessedTensorDataset(select_tensor_dataset(name, source, root, index), image_size)


def _indexed_view(dataset: Dataset, index: np.ndarray, num_classes: int) -> Subset:
    """The items ``index`` of ``dataset``, carrying the ``num_classes`` attribute that evaluation reads."""
    view = Subset(dataset, index.tolist())
    view.num_classes = num_classes  # type: ignore[attr-defined]  # eval code reads this
    return view
