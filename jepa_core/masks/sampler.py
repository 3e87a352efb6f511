"""The seeded, vectorised I-JEPA multi-block mask sampler and its one factory, :func:`mask_sampler`.

It samples the context and target masks of a whole batch at once, without a Python loop over images. Each
sample keeps its own context (the batch is padded, ``context_valid``, instead of truncated to the smallest
context as the reference collator does), and too-small contexts are repaired per sample, never by dropping
target blocks (see :meth:`BlockMaskSampler.__call__`). The block scale comes from
:mod:`jepa_core.masks.calibration`.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import torch

from jepa_core.masks.batch import MaskBatch, pack_indices
from jepa_core.masks.calibration import REPAIR_ROUNDS, block_dims, union_curve

if TYPE_CHECKING:
    from jepa_core.config import MaskConfig


class BlockMaskSampler:
    """Samples I-JEPA multi-block masks (Assran et al., 2023, Sec. 3) for a batch in one vectorised pass.

    Per batch, one block shape ``bh x bw`` is drawn (scale = calibrated nominal scale times a
    ``U(1 - scale_jitter, 1 + scale_jitter)`` jitter, aspect log-uniform in ``target_aspect``), as in the
    reference collator, so every sample has ``K`` blocks of ``T = bh * bw`` patches. Block positions are
    drawn per sample and per block. The context of each sample is a square-ish block of scale
    ``U(context_scale)`` at a random position, minus every target patch.

    Args:
        grid_h: Patch-grid height.
        grid_w: Patch-grid width.
        ratio: Target fraction of the grid covered by the union of the ``K`` target blocks, averaged
            over batches; in ``(0, 1)``.
        num_targets: Number of target blocks ``K`` per sample.
        target_aspect: ``(min, max)`` block aspect ratio (height / width), sampled log-uniformly.
        context_scale: ``(min, max)`` fraction of the grid covered by the context block before the
            targets are removed.
        min_context: Minimum number of context patches per sample.
        scale_jitter: Relative half-width of the per-batch jitter on the block scale.

    Raises:
        ValueError: On an empty grid, a ratio outside ``(0, 1)``, ``num_targets < 1``, bad ranges, or a
            ``min_context`` that leaves no room for targets.
    """

    def __init__(
        self,
        grid_h: int,
        grid_w: int,
        *,
        ratio: float,
        num_targets: int = 4,
        target_aspect: tuple[float, float] = (0.75, 1.5),
        context_scale: tuple[float, float] = (0.85, 1.0),
        min_context: int = 4,
        scale_jitter: float = 0.2,
    ) -> None:
        if int(grid_h) != grid_h or int(grid_w) != grid_w or grid_h < 1 or grid_w < 1:
            raise ValueError(f"grid must be positive integers, got grid_h={grid_h}, grid_w={grid_w}")
        grid_h, grid_w = int(grid_h), int(grid_w)
        num_patches = grid_h * grid_w
        if num_patches < 2:
            raise ValueError(f"grid {grid_h}x{grid_w} has {num_patches} patch; need at least 2")
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must be in the open interval (0, 1), got {ratio}")
        if int(num_targets) != num_targets or num_targets < 1:
            raise ValueError(f"num_targets must be an integer >= 1, got {num_targets}")
        lo_a, hi_a = (float(v) for v in target_aspect)
        if not 0.0 < lo_a <= hi_a:
            raise ValueError(f"target_aspect must satisfy 0 < min <= max, got {target_aspect}")
        lo_c, hi_c = (float(v) for v in context_scale)
        if not 0.0 < lo_c <= hi_c <= 1.0:
            raise ValueError(f"context_scale must satisfy 0 < min <= max <= 1, got {context_scale}")
        if int(min_context) != min_context or not 1 <= min_context < num_patches:
            raise ValueError(
                f"min_context must be an integer in [1, {num_patches - 1}] for a {grid_h}x{grid_w} grid, "
                f"got {min_context}"
            )
        if not 0.0 <= scale_jitter < 1.0:
            raise ValueError(f"scale_jitter must be in [0, 1), got {scale_jitter}")

        self.grid_h = grid_h
        self.grid_w = grid_w
        self.num_patches = num_patches
        self.ratio = float(ratio)
        self.num_targets = int(num_targets)
        self.target_aspect = (lo_a, hi_a)
        self.context_scale = (lo_c, hi_c)
        self.min_context = int(min_context)
        self.scale_jitter = float(scale_jitter)
        # A single block may cover at most this much, so stacking all K blocks on one spot always
        # leaves min_context patches free (the guaranteed last repair stage).
        self.max_block_area = num_patches - self.min_context
        self.block_scale = self._calibrate()

    def _calibrate(self) -> float:
        """Inverts the cached union curve to find the nominal per-block scale for ``self.ratio``."""
        scales, union = union_curve(
            self.grid_h,
            self.grid_w,
            self.num_targets,
            self.target_aspect,
            self.scale_jitter,
            self.max_block_area,
        )
        lo, hi = union[0].item(), union[-1].item()
        if not lo <= self.ratio <= hi:
            warnings.warn(
                f"ratio {self.ratio} is outside the reachable range [{lo:.3f}, {hi:.3f}] for "
                f"{self.num_targets} blocks on a {self.grid_h}x{self.grid_w} grid; clamping",
                stacklevel=3,
            )
            return scales[0].item() if self.ratio < lo else scales[-1].item()
        # First node at or above the request; linear interpolation inside the bracketing interval,
        # whose union values are strictly increasing by construction of searchsorted on a cummax.
        i = int(torch.searchsorted(union, torch.tensor([self.ratio], dtype=torch.float64)).item())
        if i == 0:
            return scales[0].item()
        s0, s1 = scales[i - 1].item(), scales[i].item()
        u0, u1 = union[i - 1].item(), union[i].item()
        return s0 + (self.ratio - u0) / (u1 - u0) * (s1 - s0)

    @property
    def max_context(self) -> int:
        """The most context patches a sample can get: the grid less the smallest block this sampler draws.

        A context never includes a target patch, and every sample has at least one whole block, so no
        context (repairs included) exceeds ``N`` minus the smallest block area over the jittered scales and
        aspects. The device path pads every batch to this length (:meth:`MaskBatch.padded_to`).
        """
        scales = self.block_scale * torch.linspace(1.0 - self.scale_jitter, 1.0 + self.scale_jitter, 65)
        lo, hi = (math.log(a) for a in self.target_aspect)
        aspects = torch.exp(torch.linspace(lo, hi, 65, dtype=torch.float64))
        s, a = torch.meshgrid(scales.double(), aspects, indexing="ij")
        bh, bw = block_dims(s.reshape(-1), a.reshape(-1), self.grid_h, self.grid_w, self.max_block_area)
        return self.num_patches - int((bh * bw).min())

    def __repr__(self) -> str:
        return (
            f"BlockMaskSampler(grid={self.grid_h}x{self.grid_w}, ratio={self.ratio}, "
            f"num_targets={self.num_targets}, block_scale={self.block_scale:.4f})"
        )

    # -- sampling helpers (all vectorised over the rows they are given) ---------------------------

    def _rand(self, shape: tuple[int, ...], gen: torch.Generator | None, dev: torch.device) -> torch.Tensor:
        """Uniform ``[0, 1)`` float64 draws of ``shape`` from ``gen`` on ``dev``."""
        return torch.rand(shape, generator=gen, device=dev, dtype=torch.float64)

    def _targets(
        self, n: int, bh: int, bw: int, gen: torch.Generator | None, dev: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draws ``n`` samples' block positions; returns ``(target_idx [n, K, T], union [n, N])``."""
        k = self.num_targets
        top = torch.randint(0, self.grid_h - bh + 1, (n, k), generator=gen, device=dev)
        left = torch.randint(0, self.grid_w - bw + 1, (n, k), generator=gen, device=dev)
        return self._blocks_from_corners(top, left, bh, bw)

    def _blocks_from_corners(
        self, top: torch.Tensor, left: torch.Tensor, bh: int, bw: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``bh x bw`` blocks at top-left corners ``[n, K]``: ``(target_idx [n, K, T], union [n, N])``."""
        n, k = top.shape
        dev = top.device
        rows = top[:, :, None, None] + torch.arange(bh, device=dev)[:, None]
        cols = left[:, :, None, None] + torch.arange(bw, device=dev)[None, :]
        idx = (rows * self.grid_w + cols).reshape(n, k, bh * bw)
        union = torch.zeros(n, self.num_patches, dtype=torch.bool, device=dev)
        union.scatter_(1, idx.reshape(n, -1), True)
        return idx, union

    def _context_blocks(self, n: int, gen: torch.Generator | None, dev: torch.device) -> torch.Tensor:
        """Draws ``n`` context blocks (before target removal) as ``BoolTensor [n, N]``."""
        lo, hi = self.context_scale
        u = self._rand((3, n), gen, dev)
        area = (lo + (hi - lo) * u[0]) * self.num_patches
        # Aspect 1 as in the reference; the width is derived from the clamped height so that the area
        # survives on non-square grids.
        ch = torch.round(torch.sqrt(area)).long().clamp(1, self.grid_h)
        cw = torch.round(area / ch).long().clamp(1, self.grid_w)
        top = torch.floor(u[1] * (self.grid_h - ch + 1)).long()
        left = torch.floor(u[2] * (self.grid_w - cw + 1)).long()
        r = torch.arange(self.grid_h, device=dev)
        c = torch.arange(self.grid_w, device=dev)
        in_rows = (r >= top[:, None]) & (r < (top + ch)[:, None])  # [n, H]
        in_cols = (c >= left[:, None]) & (c < (left + cw)[:, None])  # [n, W]
        return (in_rows[:, :, None] & in_cols[:, None, :]).reshape(n, self.num_patches)

    def __call__(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> MaskBatch:
        """Samples one batch of masks.

        Randomness comes only from ``generator`` (or torch's default generator when ``None``); sampling
        happens on the generator's device and the result is moved to ``device``, so a CPU generator
        gives identical masks whatever ``device`` is.

        Samples whose context ends up below ``min_context`` are repaired, each stage touching only the
        rows still short: (1) redraw the context block up to ``REPAIR_ROUNDS`` times (targets kept, so
        the calibrated target ratio is unaffected); (2) use every non-target patch as context; (3) redraw
        the target positions (same ``bh x bw``, ``K`` unchanged) up to ``REPAIR_ROUNDS`` times with the
        complement as context; (4) stack all ``K`` blocks on the first block's position, which leaves at
        least ``min_context`` free patches because blocks are capped at ``N - min_context`` patches.
        Stages 3-4 are rare (very high ratios on small grids) and slightly lower the union there.

        Args:
            batch_size: Number of samples ``B``.
            generator: Source of randomness; same seed gives an identical :class:`MaskBatch`.
            device: Device of the returned tensors.

        Returns:
            The batch's :class:`MaskBatch`.

        Raises:
            ValueError: If ``batch_size < 1``.
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
        b = int(batch_size)
        dev = generator.device if generator is not None else torch.device(device)

        # Block shape, shared by the batch (fixed T).
        u = self._rand((2,), generator, dev).cpu()
        scale = self.block_scale * (1.0 - self.scale_jitter + 2.0 * self.scale_jitter * u[0])
        lo, hi = math.log(self.target_aspect[0]), math.log(self.target_aspect[1])
        aspect = torch.exp(lo + (hi - lo) * u[1])
        bh_t, bw_t = block_dims(scale, aspect, self.grid_h, self.grid_w, self.max_block_area)
        bh, bw = int(bh_t), int(bw_t)

        target_idx, union = self._targets(b, bh, bw, generator, dev)
        context = self._context_blocks(b, generator, dev) & ~union

        # Repair stage 1: new context blocks for short rows.
        for _ in range(REPAIR_ROUNDS):
            short = (context.sum(dim=1) < self.min_context).nonzero().squeeze(1)
            if short.numel() == 0:
                break
            context[short] = self._context_blocks(short.numel(), generator, dev) & ~union[short]
        # Stage 2: the whole complement of the targets.
        short = (context.sum(dim=1) < self.min_context).nonzero().squeeze(1)
        context[short] = ~union[short]
        # Stage 3: move the targets of rows whose complement itself is too small.
        for _ in range(REPAIR_ROUNDS):
            short = (context.sum(dim=1) < self.min_context).nonzero().squeeze(1)
            if short.numel() == 0:
                break
            idx_s, union_s = self._targets(short.numel(), bh, bw, generator, dev)
            target_idx[short], union[short], context[short] = idx_s, union_s, ~union_s
        # Stage 4: all K blocks on the first one's spot (deterministic, always enough room).
        short = (context.sum(dim=1) < self.min_context).nonzero().squeeze(1)
        if short.numel() > 0:
            first = target_idx[short, :1, :].expand(-1, self.num_targets, -1).clone()
            union_s = torch.zeros(short.numel(), self.num_patches, dtype=torch.bool, device=dev)
            union_s.scatter_(1, first[:, 0, :], True)
            target_idx[short], union[short], context[short] = first, union_s, ~union_s

        context_idx, context_valid = pack_indices(context)
        batch = MaskBatch(context_idx=context_idx, context_valid=context_valid, target_idx=target_idx)
        return batch if dev == torch.device(device) else batch.to(device)


def mask_sampler(cfg: MaskConfig, grid: int, ratio: float | None = None) -> BlockMaskSampler:
    """The block-mask sampler of ``cfg`` on a ``grid`` x ``grid`` patch grid: the one place one is built.

    ``ratio`` replaces ``cfg.ratio`` (the official-code comparison searches for the one matching its tokens).
    """
    return BlockMaskSampler(
        grid,
        grid,
        ratio=cfg.ratio if ratio is None else ratio,
        num_targets=cfg.num_targets,
        target_aspect=(cfg.target_aspect_min, cfg.target_aspect_max),
        context_scale=(cfg.context_scale_min, cfg.context_scale_max),
        min_context=cfg.min_context,
    )
