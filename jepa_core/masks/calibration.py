"""Calibration of the block scale: the per-block area whose *union* of ``K`` blocks covers a given fraction.

Blocks overlap and their sides are integers, so the per-block area that yields a given union fraction is
found by a calibration done once per grid (:func:`union_curve`): the expected union over uniformly placed
blocks is computed exactly for every integer block shape (:func:`expected_union_table`), corrected for the
sampler's target-repair stages (:func:`truncation_shift`), then averaged over the per-batch scale/aspect draw
by quadrature; :class:`~jepa_core.masks.BlockMaskSampler` inverts the resulting monotone curve. The
calibration never touches torch's global generator.
"""

from __future__ import annotations

import functools
import math

import torch

# Number of repair rounds for samples whose context is too small (per repair stage). Each round only
# redraws the offending rows, so the cost is negligible once few samples remain. The sampler's repairs and
# the calibration's model of them (truncation_shift) share it.
REPAIR_ROUNDS = 10
# Resolution of the calibration: midpoints of the per-batch scale-jitter and aspect draws, the number of
# candidate per-block scales the union curve is tabulated at, and the fine grid of effective scales.
_QUAD_JITTER = 48
_QUAD_ASPECT = 40
_CURVE_POINTS = 256
_X_POINTS = 640


def block_dims(
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


def expected_union_table(grid_h: int, grid_w: int, num_targets: int) -> torch.Tensor:
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
def truncation_shift(grid_h: int, grid_w: int, num_targets: int, max_area: int) -> torch.Tensor:
    """Change of the expected union fraction caused by the target-repair stages, per block shape.

    Repair stage 3 of :meth:`~jepa_core.masks.BlockMaskSampler.__call__` redraws the block positions of a
    sample while its union exceeds ``c = max_area`` (= ``N - min_context``), and stage 4 stacks the blocks
    (union = one block) if that keeps failing. So the effective union is ``U`` conditioned on ``U <= c``
    with probability ``1 - p^(R+1)`` and the single block area otherwise, where ``p = P(U > c)``. Neither
    has a closed form, so both are estimated by a small seeded Monte Carlo, used only as the *difference* to
    the plain mean over the same draws (a control variate: it is exactly zero where no draw exceeds ``c``
    and has far less noise than the union itself). Only shapes with ``K * bh * bw > c`` can be affected.

    Returns:
        ``float64 [grid_h, grid_w]`` to add to :func:`expected_union_table`.
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
    stacked = p_fail ** (REPAIR_ROUNDS + 1)
    effective = (1.0 - stacked) * cond_mean + stacked * area.double()
    shift[bh - 1, bw - 1] = (effective - union.mean(dim=1)) / num_patches
    return shift


@functools.lru_cache(maxsize=64)
def union_curve(
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
    table = expected_union_table(grid_h, grid_w, num_targets)
    table = table + truncation_shift(grid_h, grid_w, num_targets, max_area)
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
    bh, bw = block_dims(
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
