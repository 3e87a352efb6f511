"""Datasets, deterministic preprocessing and on-device augmentation for the JEPA trainer.

Small datasets (Fashion-MNIST, sklearn digits, CIFAR-10/100) are held whole as uint8 tensors so a trial can
move them onto the training device once and augment batches there, without a DataLoader. ImageNet-style
folders are too large for that and stream from disk through torchvision instead.

Evaluation uses three splits (:func:`eval_splits`): a fixed *validation* split carved from the official
training split, the *probe-train* images (the rest of the training split, or a subset) that fit the probe
and the kNN bank, and the official *test* split. Pretraining uses no labels and sees the whole training split.

Nothing here unpickles: IDX and CIFAR *binary* files are parsed with numpy, and the python-pickle CIFAR
release is refused on purpose because a pickle from an untrusted download can run arbitrary code.

Modules, one concern each:

- :mod:`~jepa_core.data.files`: :class:`DataError`, file cache stamps, the sha256-verified download.
- :mod:`~jepa_core.data.fashion_mnist`, :mod:`~jepa_core.data.digits`, :mod:`~jepa_core.data.cifar`: one
  source each, read into numpy arrays.
- :mod:`~jepa_core.data.tensors`: :class:`TensorDataset`, :func:`load_tensor_dataset` (the registry of the
  sources above) and seeded class-balanced subsets.
- :mod:`~jepa_core.data.augment`: :func:`preprocess` and :class:`RandomResizedCropAug`.
- :mod:`~jepa_core.data.image_folder`: :class:`ImageFolderData`, ImageNet-style folders streamed from disk.
- :mod:`~jepa_core.data.splits`: the evaluation splits and their preprocessed datasets.
"""

from __future__ import annotations

from jepa_core.config import default_val_size
from jepa_core.data.augment import RandomResizedCropAug, preprocess
from jepa_core.data.files import DataError
from jepa_core.data.image_folder import ImageFolderData
from jepa_core.data.splits import (
    EVAL_SPLITS,
    EvalSplits,
    carve_eval_splits,
    eval_dataset,
    eval_split_dataset,
    eval_splits,
    split_size,
)
from jepa_core.data.tensors import DATASET_NAMES, TensorDataset, load_tensor_dataset

__all__ = [
    "DATASET_NAMES",
    "EVAL_SPLITS",
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
    "split_size",
]
