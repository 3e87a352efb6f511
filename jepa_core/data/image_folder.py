"""ImageNet-style folders (``root/train/<class>/*``, ``root/val/<class>/*``), streamed from disk.

They are too large to hold as tensors, so images are decoded per item through torchvision's ``ImageFolder``
and a DataLoader; torchvision is imported only when a folder is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from jepa_core.data.files import DataError
from jepa_core.data.tensors import canonical_split

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageFolderData", "is_image_folder"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def is_image_folder(name: str) -> bool:
    """Whether the dataset name ``name`` means image folders (``"imagefolder"``, ``"image_folder"``)."""
    # "imagenet" is accepted too: it is just the best-known dataset laid out as image folders.
    return name.strip().lower() in ("imagefolder", "image_folder", "imagenet")


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
        names = ("train",) if canonical_split(split) == "train" else ("val", "test")
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

        key = (canonical_split(split), bool(train))
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
