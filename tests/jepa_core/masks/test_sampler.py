"""Tests for the I-JEPA multi-block mask sampler (Assran et al., 2023)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jepa_core.masks import BlockMaskSampler, MaskBatch, mask_sampler

# The sampler runs on its generator's device; on a GPU the same statistics must hold there.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def seeded(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _context_mask(mask: MaskBatch, num_patches: int) -> torch.Tensor:
    """``BoolTensor [B, N]``: each sample's valid context patches, built one image at a time."""
    out = torch.zeros(mask.context_idx.shape[0], num_patches, dtype=torch.bool)
    for row, idx, valid in zip(out, mask.context_idx, mask.context_valid, strict=True):
        row[idx[valid]] = True
    return out


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

    ctx = _context_mask(mask, n)
    union = mask.target_union(n)
    assert torch.equal(ctx.sum(dim=1), counts)
    assert not bool((ctx & union).any()), "context and targets overlap"


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
    gen = seeded(3, device)
    for _ in range(8):
        mask = sampler(48, gen)
        assert mask.target_idx.device.type == device
        _check_invariants(sampler, mask.to("cpu"))


def test_block_mask_sampler__each_sample_keeps_own_context() -> None:
    sampler = BlockMaskSampler(8, 8, ratio=0.4)
    counts = sampler(64, seeded(0)).context_counts.double()
    assert len(set(counts.tolist())) > 1, "all samples got the same context size"
    assert counts.mean().item() >= counts.min().item() + 3.0


def test_block_mask_sampler__seed_reproduces() -> None:
    sampler = BlockMaskSampler(14, 14, ratio=0.5)
    a, b, c = sampler(32, seeded(11)), sampler(32, seeded(11)), sampler(32, seeded(12))
    for field in ("context_idx", "context_valid", "target_idx"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    same = (
        a.target_idx.shape == c.target_idx.shape
        and torch.equal(a.target_idx, c.target_idx)
        and a.context_idx.shape == c.context_idx.shape
        and torch.equal(a.context_idx, c.context_idx)
    )
    assert not same


@pytest.mark.parametrize(("grid_h", "grid_w", "ratio"), [(14, 14, 0.4), (8, 8, 0.7), (7, 12, 0.3)])
def test_block_mask_sampler__targets_are_rectangles_with_aspect_in_range(
    grid_h: int, grid_w: int, ratio: float
) -> None:
    lo, hi = 0.75, 1.5
    sampler = BlockMaskSampler(grid_h, grid_w, ratio=ratio, target_aspect=(lo, hi))
    gen = seeded(5)
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
    gen = seeded(0)
    counts = {}
    for batch in (8, 512):
        with _OpCount() as count:
            sampler(batch, gen)
        counts[batch] = count.ops
    assert counts[512] <= 2 * counts[8], counts


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


def test_mask_sampler__builds_the_configured_sampler(tiny_config) -> None:
    cfg = tiny_config.mask
    sampler = mask_sampler(cfg, 7)
    expected = BlockMaskSampler(
        7,
        7,
        ratio=cfg.ratio,
        num_targets=cfg.num_targets,
        target_aspect=(cfg.target_aspect_min, cfg.target_aspect_max),
        context_scale=(cfg.context_scale_min, cfg.context_scale_max),
        min_context=cfg.min_context,
    )
    assert repr(sampler) == repr(expected) and sampler.block_scale == expected.block_scale
    a, b = sampler(8, seeded(0)), expected(8, seeded(0))
    for field in ("context_idx", "context_valid", "target_idx"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert mask_sampler(cfg, 7, ratio=0.3).ratio == 0.3  # the official comparison's override
