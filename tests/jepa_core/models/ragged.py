"""A ragged batch of three contexts on a 4 x 4 grid, shared by the packing, encoder and predictor tests."""

from __future__ import annotations

import torch


def ragged_context() -> tuple[torch.Tensor, torch.Tensor]:
    """``(idx, valid)``, both ``(3, 6)``: contexts of 6, 3 and 5 patches, right-padded with index 0."""
    idx = torch.tensor([[0, 3, 5, 9, 12, 15], [1, 2, 7, 0, 0, 0], [4, 6, 8, 10, 11, 0]])
    valid = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] * 5 + [False]])
    return idx, valid
