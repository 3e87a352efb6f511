"""Fixtures shared by the jepa_core.data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def image_folder_root(tmp_path: Path) -> Path:
    """A tiny ImageNet-style tree in ``tmp_path``: ``train/`` and ``val/``, cat and dog, 3 PNGs per class."""
    from PIL import Image

    for split in ("train", "val"):
        for k, cls in enumerate(("cat", "dog")):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                pixels = np.full((40, 50, 3), 40 * k + 10 * i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return tmp_path
