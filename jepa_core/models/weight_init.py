"""The I-JEPA weight initialisation shared by the encoder's blocks and the predictor."""

from __future__ import annotations

import math

from timm.layers import trunc_normal_
from torch import nn


def init_weights(m: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear weights with zero biases, unit layer norms; for ``Module.apply``."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def rescale_blocks(blocks: nn.ModuleList) -> None:
    """Shrinks each residual branch's output projection with depth (as I-JEPA does) for a stable start.

    Block ``i`` (from 1) has its ``attn.proj`` and ``mlp.fc2`` weights divided by ``sqrt(2 i)``.
    """
    for i, blk in enumerate(blocks, start=1):
        blk.attn.proj.weight.data.div_(math.sqrt(2.0 * i))
        blk.mlp.fc2.weight.data.div_(math.sqrt(2.0 * i))
