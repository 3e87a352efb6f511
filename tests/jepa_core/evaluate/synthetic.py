"""Synthetic features for the evaluation tests."""

from __future__ import annotations

import torch


def blobs(
    n_per_class: int, num_classes: int, dim: int, spread: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs around random, well-separated centres."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=gen) * 5.0
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(y.shape[0], dim, generator=gen)
    return x, y
