"""The calibrated block scale gives the requested union ratio, quietly (no global RNG) and with a warning
where the ratio cannot be reached."""

from __future__ import annotations

import pytest
import torch

from jepa_core.masks import BlockMaskSampler, mask_stats
from tests.jepa_core.masks.test_sampler import DEVICES, seeded


def _mean_union_ratio(
    sampler: BlockMaskSampler, batches: int, batch_size: int, seed: int, device: str = "cpu"
) -> float:
    gen = seeded(seed, device)
    n = sampler.num_patches
    total = sum(mask_stats(sampler(batch_size, gen), n)["target_ratio_mean"] for _ in range(batches))
    return total / batches


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("grid", [7, 8, 10, 14])
@pytest.mark.parametrize("ratio", [0.2, 0.4, 0.6, 0.8])
def test_block_mask_sampler__union_ratio_honoured(grid: int, ratio: float, device: str) -> None:
    sampler = BlockMaskSampler(grid, grid, ratio=ratio, num_targets=4)
    mean = _mean_union_ratio(
        sampler, batches=80, batch_size=32, seed=grid * 100 + int(ratio * 10), device=device
    )
    assert abs(mean - ratio) <= 0.03, f"mean union ratio {mean:.4f} vs requested {ratio}"


@pytest.mark.parametrize(
    ("grid_h", "grid_w", "num_targets", "ratio"),
    [(14, 14, 1, 0.3), (10, 10, 2, 0.5), (8, 8, 8, 0.7), (7, 14, 4, 0.5), (12, 6, 3, 0.35)],
)
def test_block_mask_sampler__union_ratio_other_shapes(
    grid_h: int, grid_w: int, num_targets: int, ratio: float
) -> None:
    sampler = BlockMaskSampler(grid_h, grid_w, ratio=ratio, num_targets=num_targets)
    mean = _mean_union_ratio(sampler, batches=80, batch_size=32, seed=7)
    assert abs(mean - ratio) <= 0.03, f"mean union ratio {mean:.4f} vs requested {ratio}"


def test_block_mask_sampler__calibration_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    sampler = BlockMaskSampler(9, 11, ratio=0.55, num_targets=5)  # a configuration no other test uses
    sampler(16, seeded(0))
    assert torch.equal(torch.get_rng_state(), state)


def test_block_mask_sampler__unreachable_ratio_warns() -> None:
    with pytest.warns(UserWarning, match="outside the reachable range"):
        BlockMaskSampler(7, 7, ratio=0.99)
