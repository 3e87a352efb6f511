"""jepa_core.evaluate.knn: the weighted kNN classifier on synthetic features."""

from __future__ import annotations

import torch

from jepa_core.evaluate import knn_accuracy

from .synthetic import blobs


def test_knn_accuracy__separated_clusters_perfect() -> None:
    gen = torch.Generator().manual_seed(6)
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.arange(2).repeat_interleave(30)
    x = centres[y] + 0.05 * torch.randn(60, 3, generator=gen)
    assert knn_accuracy(x[::2], y[::2], x[1::2], y[1::2], k=5, chunk=7) == 1.0


def test_knn_accuracy__k_larger_than_train_is_clamped() -> None:
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    test = torch.tensor([[1.0, 0.05], [0.05, 1.0]])
    # All 3 neighbours vote; similarity weighting (T=0.07) lets the nearest class win.
    acc = knn_accuracy(train, torch.tensor([0, 0, 1]), test, torch.tensor([0, 1]), k=50)
    assert acc == 1.0


def test_knn_accuracy__tiny_temperature_stays_finite() -> None:
    x, y = blobs(20, 3, 8, spread=1.0, seed=7)
    assert knn_accuracy(x, y, x, y, k=5, temperature=1e-3) == 1.0
