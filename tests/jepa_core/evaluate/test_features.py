"""jepa_core.evaluate.features: batches, transform, dtype and the encoder's eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from jepa_core.evaluate import extract_features


def test_extract_features__batches_transform_and_dtype() -> None:
    images = torch.randint(0, 256, (10, 3, 2, 2), dtype=torch.uint8)
    seen: list[int] = []

    def encode(b: torch.Tensor) -> torch.Tensor:
        seen.append(b.shape[0])
        assert b.dtype == torch.float16  # the transform ran before encode
        return b.flatten(1)[:, :5]

    feats = extract_features(encode, images, batch_size=4, transform=lambda b: b.to(torch.float16) / 255)
    assert seen == [4, 4, 2]
    assert feats.dtype == torch.float32 and feats.shape == (10, 5)
    expected = (images.to(torch.float16) / 255).flatten(1)[:, :5].float()
    torch.testing.assert_close(feats, expected)


def test_extract_features__module_eval_mode_restored() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(4, 3))
    model.train()
    model[2].eval()  # a deliberately frozen submodule must stay frozen afterwards
    x = torch.randn(6, 2, 2)
    a = extract_features(model, x, batch_size=4)
    b = extract_features(model, x)
    torch.testing.assert_close(a, b)  # dropout inactive -> deterministic
    assert model.training and model[1].training and not model[2].training
    assert not a.requires_grad


def test_extract_features__rejects_non_2d_output() -> None:
    with pytest.raises(ValueError, match=r"\[b, D\]"):
        extract_features(lambda b: b, torch.zeros(3, 2, 2))
