"""Tests for jepa_core.data.augment: deterministic preprocessing and the batched random resized crop."""

from __future__ import annotations

import time

import pytest
import torch

from jepa_core import data


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


def test_preprocess__float_input_not_modified() -> None:
    images = torch.full((1, 1, 4, 4), 0.75)
    out = data.preprocess(images, 4, (0.25,), (0.5,))
    assert torch.allclose(out, torch.ones_like(out)) and float(images.max()) == 0.75


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
