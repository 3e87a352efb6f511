"""Tests for jepa_core.data.image_folder: ImageNet-style folders streamed through torchvision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jepa_core import data
from jepa_core.data.image_folder import IMAGENET_MEAN


def test_image_folder_data__loaders_and_eval_dataset(image_folder_root: Path) -> None:
    folder = data.ImageFolderData(str(image_folder_root), image_size=16, hflip=True)
    assert folder.num_classes == 2 and folder.classes == ["cat", "dog"] and folder.mean == IMAGENET_MEAN
    images, labels = next(iter(folder.loader("train", batch_size=4, train=True, workers=0, seed=0)))
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.float32 and labels.dtype == torch.int64
    batches = list(folder.loader("val", batch_size=4, train=False, workers=0, seed=0))
    assert [b[0].shape[0] for b in batches] == [4, 2] and batches[0][1].tolist() == [0, 0, 0, 1]

    ev = data.eval_dataset("imagefolder", "test", str(image_folder_root), image_size=16, subset=2, seed=0)
    assert len(ev) == 2 and sorted(int(ev[i][1]) for i in range(2)) == [0, 1]
    assert ev.num_classes == 2  # type: ignore[attr-defined]


def test_image_folder_data__missing_root(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match="--set data.root=DIR"):
        data.ImageFolderData(None)
    with pytest.raises(data.DataError, match="val or test"):
        data.ImageFolderData(str(tmp_path))
