"""2D sin-cos positions: today's values pinned, and why timm's function does not replace ours."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed

from jepa_core.models import sincos_pos_embed_2d

# (grid_h, grid_w, dim): the encoder and predictor widths of the presets on their grids (28/7, 28/4, 32/4,
# 112/8, 224/14, 224/16), the tests' tiny model, and non-square grids.
GRIDS = [
    (4, 4, 128),
    (4, 4, 64),
    (7, 7, 192),
    (7, 7, 96),
    (7, 7, 256),
    (8, 8, 384),
    (14, 14, 192),
    (16, 16, 1280),
    (16, 16, 384),
    (14, 14, 768),
    (4, 4, 32),
    (4, 4, 16),
    (4, 5, 16),
    (3, 7, 32),
]


def test_sincos_pos_embed_2d__shape_and_distinct_positions():
    pe = sincos_pos_embed_2d(4, 5, 16)
    assert pe.shape == (20, 16)
    assert torch.cdist(pe, pe).add(torch.eye(20)).min() > 0  # every position has its own code


@pytest.mark.parametrize(("grid_h", "grid_w", "dim"), GRIDS)
def test_sincos_pos_embed_2d__values_are_the_documented_layout(grid_h, grid_w, dim):
    """``[sin(r w), cos(r w), sin(c w), cos(c w)]`` in float64, row-major patches, then float32: the values
    every saved model was trained with (positions are not stored in checkpoints)."""
    quarter = dim // 4
    omega = 1.0 / 10000.0 ** (np.arange(quarter, dtype=np.float64) / quarter)
    rows, cols = np.divmod(np.arange(grid_h * grid_w), grid_w)
    r, c = rows[:, None] * omega, cols[:, None] * omega
    expected = np.concatenate([np.sin(r), np.cos(r), np.sin(c), np.cos(c)], axis=1).astype(np.float32)
    pe = sincos_pos_embed_2d(grid_h, grid_w, dim)
    assert pe.dtype == torch.float32
    assert torch.equal(pe, torch.from_numpy(expected))


@pytest.mark.parametrize(("grid_h", "grid_w", "dim"), GRIDS)
def test_sincos_pos_embed_2d__timm_build_sincos2d_pos_embed_is_not_identical(grid_h, grid_w, dim):
    """Why timm's ``build_sincos2d_pos_embed`` (timm 1.0) does not replace ours.

    By default it orders the channels ``[sin_h, sin_w, cos_h, cos_w]`` (ours: ``[sin_h, cos_h, sin_w,
    cos_w]``): a max abs difference of about 1.9-2.0. With ``interleave_sin_cos=True`` the layout is ours but
    it computes in float32 (ours in float64): up to 1e-6 apart (9.8e-7 at 16 x 16 x 1280), not equal. Either
    would silently change every saved model; if this test fails, timm now matches and may be used.
    """
    ours = sincos_pos_embed_2d(grid_h, grid_w, dim)
    default = build_sincos2d_pos_embed([grid_h, grid_w], dim)
    assert (default - ours).abs().max() > 1.0
    interleaved = build_sincos2d_pos_embed([grid_h, grid_w], dim, interleave_sin_cos=True)
    assert not torch.equal(interleaved, ours)
    assert 0 < (interleaved - ours).abs().max() <= 2e-6


def test_sincos_pos_embed_2d__dim_not_divisible_by_four_raises():
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_pos_embed_2d(4, 4, 18)
