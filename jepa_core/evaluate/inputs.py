"""Checks shared by the scorers: a ``[N, D]`` feature matrix with its ``[N]`` labels, and the class count."""

from __future__ import annotations

import torch


def check_split(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    """Validate a ``[N, D]`` feature matrix and its ``[N]`` labels."""
    if x.dim() != 2:
        raise ValueError(f"{name} features must be 2-D [N, D], got shape {tuple(x.shape)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name} labels must be 1-D with {x.shape[0]} entries, got shape {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} split is empty")


def infer_num_classes(num_classes: int | None, *labels: torch.Tensor) -> int:
    """Return ``num_classes`` or, if None, one more than the largest label seen in any split."""
    seen = max(int(y.max().item()) for y in labels) + 1
    if num_classes is None:
        return seen
    if seen > num_classes:
        raise ValueError(f"label {seen - 1} out of range for num_classes={num_classes}")
    return num_classes


def check_train_test(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int | None,
) -> int:
    """Validates both splits and their common feature width; returns the class count."""
    check_split(train_x, train_y, "train")
    check_split(test_x, test_y, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"feature dims differ: train {train_x.shape[1]} vs test {test_x.shape[1]}")
    return infer_num_classes(num_classes, train_y, test_y)
