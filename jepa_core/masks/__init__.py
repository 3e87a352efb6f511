"""Seeded, vectorised multi-block mask sampler for I-JEPA.

I-JEPA (Assran et al., 2023, "Self-Supervised Learning from Images with a Joint-Embedding Predictive
Architecture") trains a predictor to regress the target-encoder embeddings of ``K`` rectangular target
blocks from the embedding of one large context block from which every target patch has been removed.
This module samples those masks for a whole batch at once, without a Python loop over images.

Differences from the reference recipe, all deliberate:

* The knob is ``ratio``: the fraction of the patch grid covered by the *union* of the ``K`` target
  blocks, on average over batches. Blocks overlap and their sides are integers, so the per-block area
  that yields a given union fraction is found by a calibration done once per grid (see
  :func:`_union_curve`): the expected union over uniformly placed blocks is computed exactly for every
  integer block shape, then averaged over the per-batch scale/aspect draw by quadrature, and the
  resulting monotone curve is inverted.
* Each sample keeps its own context; the batch is padded (``context_valid``) instead of truncated to
  the smallest context as the reference collator does.
* Too-small contexts are repaired per sample (see :meth:`BlockMaskSampler.__call__`), never by
  dropping target blocks.

Patch indices are flattened row-major: patch ``(r, c)`` of a ``grid_h x grid_w`` grid is
``r * grid_w + c``.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import torch

from jepa_core.config import MaskConfig

__all__ = ["BlockMaskSampler", "MaskBatch", "mask_sampler", "mask_stats"]

# Number of repair rounds for samples whose context is too small (per repair stage). Each round only
# redraws the offending rows, so the cost is negligible once few samples remain.
_REPAIR_ROUNDS = 10
# Resolution of the calibration: midpoints of the per-batch scale-jitter and aspect draws, the number of
# candidate per-block scales the union curve is tabulated at, and the fine grid of effective scales.
_QUAD_JITTER = 48
_QUAD_ASPECT = 40
_CURVE_POINTS = 256
_X_POINTS = 640


@dataclass(eq=False)
class MaskBatch:
    """Context/target patch indices for one batch.

    Attributes:
        context_idx: ``LongTensor [B, Lc]``; each sample's context patch indices in ascending order,
            padded at the end with index 0 up to the largest context in the batch.
        context_valid: ``BoolTensor [B, Lc]``; ``True`` for real entries, ``False`` for padding.
        target_idx: ``LongTensor [B, K, T]``; ``K`` target blocks per sample, each ``T = bh * bw``
            patch indices in row-major order within the block. ``bh, bw`` are shared by the batch.
    """

    context_idx: torch.Tensor
    context_valid: torch.Tensor
    target_idx: torch.Tensor

    def to(self, device: torch.device | str) -> MaskBatch:
        """Returns a copy with every tensor moved to ``device``."""
        return MaskBatch(
            context_idx=self.context_idx.to(device),
            context_valid=self.context_valid.to(device),
            target_idx=self.target_idx.to(device),
        )

    @property
    def context_counts(self) -> torch.Tensor:
        """``LongTensor [B]``: number of real context patches per sample."""
        return self.context_valid.sum(dim=1)

    def target_union(self, num_patches: int) -> torch.Tensor:
        """``BoolTensor [B, N]``: patches covered by at least one of the ``K`` target blocks."""
        batch = self.target_idx.shape[0]
        union = torch.zeros(batch, num_patches, dtype=torch.bool, device=self.target_idx.device)
        return union.scatter_(1, self.target_idx.reshape(batch, -1), True)

    def context_mask(self, num_patches: int) -> torch.Tensor:
        """``BoolTensor [B, N]``: the context patches of each sample."""
        batch = self.context_idx.shape[0]
        # Padding entries point at index 0, which may also be a real context patch; route them to a
        # spare column instead so a padded False can never clobber a real True.
        idx = torch.where(self.context_valid, self.context_idx, num_patches)
        mask = torch.zeros(batch, num_patches + 1, dtype=torch.bool, device=self.context_idx.device)
        mask.scatter_(1, idx, True)
        return mask[:, :num_patches]


def mask_stats(mask: MaskBatch, num_patches: int) -> dict[str, float]:
    """Summarises a mask batch for benchmarks and logs.

    Args:
        mask: The batch to describe.
        num_patches: Number of patches ``N`` of the grid.

    Returns:
        ``context_patches_mean`` (mean context size), ``target_patches_mean`` (mean size of the union
        of the target blocks) and ``target_ratio_mean`` (that size divided by ``N``).
    """
    union = mask.target_union(num_patches).sum(dim=1).double().mean().item()
    return {
        "context_patches_mean": mask.context_counts.double().mean().item(),
        "target_patches_mean": union,
        "target_ratio_mean": union / num_patches,
    }


def _block_dims(
    scale: torch.Tensor, aspect: torch.Tensor, grid_h: int, grid_w: int, max_area: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turns block scales (fraction of the grid) and aspects (height / width) into integer sides.

    Shared by the sampler and its calibration so both see exactly the same rounding and clamping.
    Blocks are capped at ``max_area`` patches so that a sample whose blocks all sit on top of each
    other always leaves enough room for the minimum context (the last repair stage relies on it).
    """
    area = scale.double() * (grid_h * grid_w)
    aspect = aspect.double()
    bh = torch.round(torch.sqrt(area * aspect)).long().clamp(1, grid_h)
    bw = torch.round(torch.sqrt(area / aspect)).long().clamp(1, grid_w)
    # Enforce the area cap by first shrinking the longer side; if the shorter side alone already
    # exceeds the cap (only on degenerate grids) the longer side is 1 and the shorter one is cut.
    h_long = bh >= bw
    long_side = torch.where(h_long, bh, bw)
    short_side = torch.where(h_long, bw, bh)
    long_side = torch.minimum(long_side, (max_area // short_side).clamp(min=1))
    short_side = torch.minimum(short_side, max_area // long_side)
    return torch.where(h_long, long_side, short_side), torch.where(h_long, short_side, long_side)


def _expected_union_table(grid_h: int, grid_w: int, num_targets: int) -> torch.Tensor:
    """Exact expected union fraction of ``K`` uniformly placed blocks, for every block shape.

    A cell ``(r, c)`` is covered by one block of shape ``bh x bw`` with probability
    ``p_row(r) * p_col(c)`` (rows and columns of the top-left corner are independent), and the ``K``
    blocks are placed independently, so ``P(covered by the union) = 1 - (1 - p)^K``. Summing over cells
    gives the expected union without any Monte Carlo noise.

    Returns:
        ``float64 [grid_h, grid_w]``; entry ``[bh - 1, bw - 1]`` is the expected union fraction.
    """

    def cover_prob(size: int) -> torch.Tensor:
        side = torch.arange(1, size + 1, dtype=torch.float64)[:, None]  # block side
        cell = torch.arange(size, dtype=torch.float64)[None, :]  # cell coordinate
        # Starts s with s <= cell < s + side and 0 <= s <= size - side.
        lo = torch.clamp(cell - side + 1, min=0)
        hi = torch.minimum(cell, size - side)
        return (hi - lo + 1).clamp(min=0) / (size - side + 1)

    p_row = cover_prob(grid_h)  # [bh, r]
    p_col = cover_prob(grid_w)  # [bw, c]
    p_cell = p_row[:, None, :, None] * p_col[None, :, None, :]  # [bh, bw, r, c]
    return (1.0 - (1.0 - p_cell) ** num_targets).mean(dim=(2, 3))


@functools.lru_cache(maxsize=64)
def _truncation_shift(grid_h: int, grid_w: int, num_targets: int, max_area: int) -> torch.Tensor:
    """Change of the expected union fraction caused by the target-repair stages, per block shape.

    Repair stage 3 of :meth:`BlockMaskSampler.__call__` redraws the block positions of a sample while its
    union exceeds ``c = max_area`` (= ``N - min_context``), and stage 4 stacks the blocks (union = one
    block) if that keeps failing. So the effective union is ``U`` conditioned on ``U <= c`` with
    probability ``1 - p^(R+1)`` and the single block area otherwise, where ``p = P(U > c)``. Neither has a
    closed form, so both are estimated by a small seeded Monte Carlo, used only as the *difference* to the
    plain mean over the same draws (a control variate: it is exactly zero where no draw exceeds ``c`` and
    has far less noise than the union itself). Only shapes with ``K * bh * bw > c`` can be affected.

    Returns:
        ``float64 [grid_h, grid_w]`` to add to :func:`_expected_union_table`.
    """
    num_patches = grid_h * grid_w
    shift = torch.zeros(grid_h, grid_w, dtype=torch.float64)
    bh, bw = torch.meshgrid(torch.arange(1, grid_h + 1), torch.arange(1, grid_w + 1), indexing="ij")
    area = bh * bw
    hit = (num_targets * area > max_area) & (area <= max_area)
    if not bool(hit.any()):
        return shift
    bh, bw, area = bh[hit], bw[hit], area[hit]
    shapes = int(bh.numel())
    # Keep the boolean work tensor to a few hundred thousand entries so calibration stays around ten ms;
    # the control variate keeps the shift accurate to ~1e-3 even with a few dozen draws per shape.
    draws = max(32, min(512, 300_000 // (shapes * num_patches)))
    gen = torch.Generator().manual_seed(0)  # private generator: calibration never touches global RNG
    rows = torch.arange(grid_h)
    cols = torch.arange(grid_w)
    covered = torch.zeros(shapes, draws, grid_h, grid_w, dtype=torch.bool)
    for _ in range(num_targets):
        u = torch.rand(2, shapes, draws, generator=gen, dtype=torch.float64)
        top = torch.floor(u[0] * (grid_h - bh + 1)[:, None]).long()[..., None]
        left = torch.floor(u[1] * (grid_w - bw + 1)[:, None]).long()[..., None]
        in_rows = (rows >= top) & (rows < top + bh[:, None, None])
        in_cols = (cols >= left) & (cols < left + bw[:, None, None])
        covered |= in_rows[..., :, None] & in_cols[..., None, :]
    union = covered.view(shapes, draws, num_patches).sum(dim=2).double()  # [shapes, draws]
    accepted = union <= max_area
    p_fail = 1.0 - accepted.double().mean(dim=1)
    n_acc = accepted.sum(dim=1)
    cond_mean = torch.where(n_acc > 0, (union * accepted).sum(dim=1) / n_acc.clamp(min=1), area.double())
    stacked = p_fail ** (_REPAIR_ROUNDS + 1)
    effective = (1.0 - stacked) * cond_mean + stacked * area.double()
    shift[bh - 1, bw - 1] = (effective - union.mean(dim=1)) / num_patches
    return shift


@functools.lru_cache(maxsize=64)
def _union_curve(
    grid_h: int,
    grid_w: int,
    num_targets: int,
    aspect: tuple[float, float],
    jitter: float,
    max_area: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected union fraction as a function of the nominal per-block scale.

    The per-batch draw is scale ``s * U(1 - jitter, 1 + jitter)`` and aspect log-uniform in ``aspect``.
    First ``g(x)``, the union fraction at effective scale ``x`` averaged over the aspect draw (midpoint
    rule), is tabulated on a fine log grid of ``x``, mapping each draw to its integer block shape exactly
    like the sampler does. Then ``f(s)`` averages ``g(s * j)`` over jitter midpoints ``j``. The curve is
    made monotone with a running maximum.

    Returns:
        ``(scales, union_fraction)``, both ``float64 [_CURVE_POINTS]``, ``union_fraction`` nondecreasing.
        Treat them as read-only: the result is cached.
    """
    table = _expected_union_table(grid_h, grid_w, num_targets)
    table = table + _truncation_shift(grid_h, grid_w, num_targets, max_area)
    num_patches = grid_h * grid_w
    # From "every block is a single patch" to "every block is as large as allowed even after the
    # downward jitter".
    s_lo, s_hi = 0.25 / num_patches, 1.0 / (1.0 - jitter)
    scales = torch.logspace(math.log10(s_lo), math.log10(s_hi), _CURVE_POINTS, dtype=torch.float64)
    x_lo, x_hi = s_lo * (1.0 - jitter), s_hi * (1.0 + jitter)
    xs = torch.logspace(math.log10(x_lo), math.log10(x_hi), _X_POINTS, dtype=torch.float64)
    u_a = (torch.arange(_QUAD_ASPECT, dtype=torch.float64) + 0.5) / _QUAD_ASPECT
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    asp = torch.exp(log_lo + (log_hi - log_lo) * u_a)
    bh, bw = _block_dims(
        xs[:, None].expand(-1, _QUAD_ASPECT), asp[None, :].expand(_X_POINTS, -1), grid_h, grid_w, max_area
    )
    g = table[bh - 1, bw - 1].mean(dim=1)  # [X]
    u_j = (torch.arange(_QUAD_JITTER, dtype=torch.float64) + 0.5) / _QUAD_JITTER
    x = (scales[:, None] * (1.0 - jitter + 2.0 * jitter * u_j)[None, :]).clamp(x_lo, x_hi)
    # Linear interpolation of g between its log-spaced nodes.
    hi = torch.searchsorted(xs, x).clamp(1, _X_POINTS - 1)
    w = (x - xs[hi - 1]) / (xs[hi] - xs[hi - 1])
    union = (g[hi - 1] * (1.0 - w) + g[hi] * w).mean(dim=1)
    return scales, torch.cummax(union, dim=0).values


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
        scales, union = _union_curve(
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

    def __repr__(self) -> str:
        return (
            f"BlockMaskSampler(grid={self.grid_h}x{self.grid_w}, ratio={self.ratio}, "
            f"num_targets={self.num_targets}, block_scale={self.block_scale:.4f})"
        )

    # -- sampling helpers (all vectorised over the rows they are given) ---------------------------

    def _rand(self, shape: tuple[int, ...], gen: torch.Generator | None, dev: torch.device) -> torch.Tensor:
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
        rows still short: (1) redraw the context block up to ``_REPAIR_ROUNDS`` times (targets kept, so
        the calibrated target ratio is unaffected); (2) use every non-target patch as context; (3) redraw
        the target positions (same ``bh x bw``, ``K`` unchanged) up to ``_REPAIR_ROUNDS`` times with the
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
        bh_t, bw_t = _block_dims(scale, aspect, self.grid_h, self.grid_w, self.max_block_area)
        bh, bw = int(bh_t), int(bw_t)

        target_idx, union = self._targets(b, bh, bw, generator, dev)
        context = self._context_blocks(b, generator, dev) & ~union

        # Repair stage 1: new context blocks for short rows.
        for _ in range(_REPAIR_ROUNDS):
            short = (context.sum(dim=1) < self.min_context).nonzero().squeeze(1)
            if short.numel() == 0:
                break
            context[short] = self._context_blocks(short.numel(), generator, dev) & ~union[short]
        # Stage 2: the whole complement of the targets.
        short = (context.sum(dim=1) < self.min_context).nonzero().squeeze(1)
        context[short] = ~union[short]
        # Stage 3: move the targets of rows whose complement itself is too small.
        for _ in range(_REPAIR_ROUNDS):
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

        context_idx, context_valid = _pack(context)
        batch = MaskBatch(context_idx=context_idx, context_valid=context_valid, target_idx=target_idx)
        return batch if dev == torch.device(device) else batch.to(device)


def _pack(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Packs a ``BoolTensor [B, N]`` into ascending, end-padded indices plus a validity mask."""
    n = mask.shape[1]
    counts = mask.sum(dim=1)
    width = int(counts.max())
    pos = torch.arange(n, device=mask.device)
    # Selected patches sort first (key = index), unselected after them (key = index + N); the keys are
    # unique, so one sort yields each row's selected indices in ascending order.
    key = torch.where(mask, pos, pos + n)
    idx = torch.sort(key, dim=1).values[:, :width]
    valid = torch.arange(width, device=mask.device)[None, :] < counts[:, None]
    return torch.where(valid, idx, 0), valid


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
