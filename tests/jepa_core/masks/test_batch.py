from __future__ import annotations

import pytest
import torch

from jepa_core.masks import BlockMaskSampler, mask_stats
from jepa_core.masks.batch import pack_indices
from tests.jepa_core.masks.test_sampler import seeded


def test_mask_batch__helpers_agree() -> None:
    sampler = BlockMaskSampler(10, 10, ratio=0.5)
    mask = sampler(8, seeded(1))
    n = sampler.num_patches
    union = mask.target_union(n)
    assert torch.equal(union[0].nonzero().squeeze(1), mask.target_idx[0].flatten().unique())
    moved = mask.to("cpu")
    assert torch.equal(moved.context_idx, mask.context_idx)
    stats = mask_stats(mask, n)
    assert set(stats) == {"context_patches_mean", "target_patches_mean", "target_ratio_mean"}
    assert stats["target_patches_mean"] == pytest.approx(union.sum(dim=1).double().mean().item())
    assert stats["target_ratio_mean"] == pytest.approx(stats["target_patches_mean"] / n)
    assert stats["context_patches_mean"] == pytest.approx(mask.context_counts.double().mean().item())


def test_pack_indices__ascending_end_padded_with_zeros() -> None:
    mask = torch.tensor([[False, True, False, True, True], [True, False, False, False, False]])
    idx, valid = pack_indices(mask)
    assert idx.tolist() == [[1, 3, 4], [0, 0, 0]]
    assert valid.tolist() == [[True, True, True], [True, False, False]]
