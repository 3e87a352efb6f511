"""Tests for the I-JEPA multi-block mask sampler (Assran et al., 2023)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jepa_core.masks import BlockMaskSampler, MaskBatch, mask_stats

# The sampler runs on its generator's device; on a GPU the same statistics must hold there.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _mean_union_ratio(
    sampler: BlockMaskSampler, batches: int, batch_size: int, seed: int, device: str = "cpu"
) -> float:
    gen = _gen(seed, device)
    n = sampler.num_patches
    total = sum(mask_stats(sampler(batch_size, gen), n)["target_ratio_mean"] for _ in range(batches))
    return total / batches


def _check_invariants(sampler: BlockMaskSampler, mask: MaskBatch) -> None:
    n = sampler.num_patches
    b, k, _ = mask.target_idx.shape
    assert k == sampler.num_targets
    assert mask.target_idx.dtype == torch.long and mask.context_idx.dtype == torch.long
    assert mask.context_valid.dtype == torch.bool
    assert mask.context_idx.shape == mask.context_valid.shape and mask.context_idx.shape[0] == b
    assert int(mask.target_idx.min()) >= 0 and int(mask.target_idx.max()) < n
    assert int(mask.context_idx.min()) >= 0 and int(mask.context_idx.max()) < n

    counts = mask.context_counts
    assert int(counts.min()) >= sampler.min_context
    # Valid entries come first (padding only at the end), padding is index 0.
    width = mask.context_idx.shape[1]
    assert int(counts.max()) == width
    expected_valid = torch.arange(width)[None, :] < counts[:, None]
    assert torch.equal(mask.context_valid, expected_valid)
    assert bool((mask.context_idx[~mask.context_valid] == 0).all())
    # Valid entries strictly ascending, hence unique.
    steps = mask.context_idx[:, 1:] - mask.context_idx[:, :-1]
    assert bool((steps[mask.context_valid[:, 1:]] > 0).all())

    ctx = mask.context_mask(n)
    union = mask.target_union(n)
    assert torch.equal(ctx.sum(dim=1), counts)
    assert not bool((ctx & union).any()), "context and targets overlap"


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


@pytest.mark.parametrize(
    ("grid_h", "grid_w", "ratio", "num_targets", "min_context"),
    [
        (8, 8, 0.4, 4, 4),
        (14, 14, 0.6, 4, 4),
        (7, 7, 0.85, 8, 6),  # high ratio on a small grid: repairs kick in
        (3, 3, 0.6, 4, 3),  # tiny grid: exercises the last-resort repair stages
        (5, 9, 0.5, 3, 1),
    ],
)
@pytest.mark.parametrize("device", DEVICES)
def test_block_mask_sampler__invariants(
    grid_h: int, grid_w: int, ratio: float, num_targets: int, min_context: int, device: str
) -> None:
    sampler = BlockMaskSampler(grid_h, grid_w, ratio=ratio, num_targets=num_targets, min_context=min_context)
    gen = _gen(3, device)
    for _ in range(8):
        mask = sampler(48, gen)
        assert mask.target_idx.device.type == device
        _check_invariants(sampler, mask.to("cpu"))


def test_block_mask_sampler__each_sample_keeps_own_context() -> None:
    sampler = BlockMaskSampler(8, 8, ratio=0.4)
    counts = sampler(64, _gen(0)).context_counts.double()
    assert len(set(counts.tolist())) > 1, "all samples got the same context size"
    assert counts.mean().item() >= counts.min().item() + 3.0


def test_block_mask_sampler__seed_reproduces() -> None:
    sampler = BlockMaskSampler(14, 14, ratio=0.5)
    a, b, c = sampler(32, _gen(11)), sampler(32, _gen(11)), sampler(32, _gen(12))
    for field in ("context_idx", "context_valid", "target_idx"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    same = (
        a.target_idx.shape == c.target_idx.shape
        and torch.equal(a.target_idx, c.target_idx)
        and a.context_idx.shape == c.context_idx.shape
        and torch.equal(a.context_idx, c.context_idx)
    )
    assert not same


def test_block_mask_sampler__calibration_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    sampler = BlockMaskSampler(9, 11, ratio=0.55, num_targets=5)  # a configuration no other test uses
    sampler(16, _gen(0))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(("grid_h", "grid_w", "ratio"), [(14, 14, 0.4), (8, 8, 0.7), (7, 12, 0.3)])
def test_block_mask_sampler__targets_are_rectangles_with_aspect_in_range(
    grid_h: int, grid_w: int, ratio: float
) -> None:
    lo, hi = 0.75, 1.5
    sampler = BlockMaskSampler(grid_h, grid_w, ratio=ratio, target_aspect=(lo, hi))
    gen = _gen(5)
    for _ in range(30):
        idx = sampler(16, gen).target_idx
        t = idx.shape[2]
        rows, cols = idx // grid_w, idx % grid_w
        bh = rows.amax(dim=2) - rows.amin(dim=2) + 1
        bw = cols.amax(dim=2) - cols.amin(dim=2) + 1
        # Same shape for every block of the batch, and T distinct patches filling the bounding box.
        assert bool((bh == bh[0, 0]).all()) and bool((bw == bw[0, 0]).all())
        h, w = int(bh[0, 0]), int(bw[0, 0])
        assert h * w == t
        assert bool((idx.sort(dim=2).values.diff(dim=2) > 0).all())
        # Sides are rounded from sqrt(area * a) and sqrt(area / a), so a lies in
        # [(h - .5) / (w + .5), (h + .5) / (w - .5)]; a side clamped to the grid has no upper bound.
        a_min = (h - 0.5) / (w + 0.5)
        a_max = math.inf if h == grid_h else (h + 0.5) / (w - 0.5)
        if w == grid_w:
            a_min = 0.0
        assert a_min <= hi and a_max >= lo, f"block {h}x{w} cannot come from an aspect in [{lo}, {hi}]"


def test_mask_batch__helpers_agree() -> None:
    sampler = BlockMaskSampler(10, 10, ratio=0.5)
    mask = sampler(8, _gen(1))
    n = sampler.num_patches
    ctx = mask.context_mask(n)
    for i in range(8):
        expected = torch.zeros(n, dtype=torch.bool)
        expected[mask.context_idx[i][mask.context_valid[i]]] = True
        assert torch.equal(ctx[i], expected)
    union = mask.target_union(n)
    assert torch.equal(union[0].nonzero().squeeze(1), mask.target_idx[0].flatten().unique())
    moved = mask.to("cpu")
    assert torch.equal(moved.context_idx, mask.context_idx)
    stats = mask_stats(mask, n)
    assert set(stats) == {"context_patches_mean", "target_patches_mean", "target_ratio_mean"}
    assert stats["target_patches_mean"] == pytest.approx(union.sum(dim=1).double().mean().item())
    assert stats["target_ratio_mean"] == pytest.approx(stats["target_patches_mean"] / n)
    assert stats["context_patches_mean"] == pytest.approx(mask.context_counts.double().mean().item())


def test_block_mask_sampler__default_generator_and_device() -> None:
    sampler = BlockMaskSampler(8, 8, ratio=0.3)
    mask = sampler(4, device=torch.device("cpu"))
    assert mask.target_idx.device.type == "cpu"
    _check_invariants(sampler, mask)


class _OpCount(TorchDispatchMode):
    """Counts the torch operations run inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        self.ops += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "sampler",
    [BlockMaskSampler(14, 14, ratio=0.4), BlockMaskSampler(7, 7, ratio=0.85, num_targets=8, min_context=6)],
    ids=["plain", "with-repairs"],
)
def test_block_mask_sampler__whole_batch_ops_not_a_loop_over_images(sampler: BlockMaskSampler) -> None:
    """The number of torch operations does not grow with the batch (a per-image loop would multiply it)."""
    gen = _gen(0)
    counts = {}
    for batch in (8, 512):
        with _OpCount() as count:
            sampler(batch, gen)
        counts[batch] = count.ops
    assert counts[512] <= 2 * counts[8], counts


def test_block_mask_sampler__unreachable_ratio_warns() -> None:
    with pytest.warns(UserWarning, match="outside the reachable range"):
        BlockMaskSampler(7, 7, ratio=0.99)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grid_h": 8, "grid_w": 8, "ratio": 0.0}, "ratio"),
        ({"grid_h": 8, "grid_w": 8, "ratio": 1.0}, "ratio"),
        ({"grid_h": 8, "grid_w": 8, "ratio": 0.5, "num_targets": 0}, "num_targets"),
        ({"grid_h": 0, "grid_w": 8, "ratio": 0.5}, "grid"),
        ({"grid_h": 8, "grid_w": 0, "ratio": 0.5}, "grid"),
        ({"grid_h": 8, "grid_w": 8, "ratio": 0.5, "target_aspect": (1.5, 0.75)}, "target_aspect"),
        ({"grid_h": 8, "grid_w": 8, "ratio": 0.5, "context_scale": (0.5, 1.2)}, "context_scale"),
        ({"grid_h": 8, "grid_w": 8, "ratio": 0.5, "min_context": 64}, "min_context"),
        ({"grid_h": 8, "grid_w": 8, "ratio": 0.5, "min_context": 0}, "min_context"),
    ],
)
def test_block_mask_sampler__bad_arguments_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BlockMaskSampler(**kwargs)  # type: ignore[arg-type]


def test_block_mask_sampler__bad_batch_size_raises() -> None:
    sampler = BlockMaskSampler(8, 8, ratio=0.5)
    with pytest.raises(ValueError, match="batch_size"):
        sampler(0)
