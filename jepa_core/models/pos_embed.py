"""Fixed 2D sin-cos positional embeddings of a patch grid (as in MAE and I-JEPA).

They are recomputed at construction and never stored in checkpoints, so their values are part of every saved
model: changing the channel layout or the precision would silently change every old model. timm's
``build_sincos2d_pos_embed`` is not used for that reason: by default it orders the channels
``[sin_h, sin_w, cos_h, cos_w]`` (ours: ``[sin_h, cos_h, sin_w, cos_w]``) and, with ``interleave_sin_cos``,
it has our layout but computes in float32, not float64 (tests/jepa_core/models/test_pos_embed.py measures
both).
"""

from __future__ import annotations

import torch


def sincos_pos_embed_2d(grid_h: int, grid_w: int, dim: int) -> torch.Tensor:
    """Fixed 2D sin-cos positional embeddings ``[grid_h * grid_w, dim]`` (half the channels per axis).

    Row ``r * grid_w + c`` (row-major patch order) is ``[sin(r w), cos(r w), sin(c w), cos(c w)]`` with the
    ``dim / 4`` frequencies ``w_i = 10000^(-i / (dim / 4))``, computed in float64 and returned as float32.

    Raises:
        ValueError: ``dim`` is not divisible by 4.
    """
    if dim % 4:
        raise ValueError(f"embedding dim {dim} must be divisible by 4 for 2D sin-cos positions")
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    rows, cols = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64), torch.arange(grid_w, dtype=torch.float64), indexing="ij"
    )

    def axis(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)  # (N, dim/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (N, dim/2)

    return torch.cat([axis(rows), axis(cols)], dim=1).float()
