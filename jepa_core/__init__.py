"""jepa_core: an I-JEPA trainer that measures itself (Assran et al., 2023).

Public entry points: :func:`jepa_core.train.train`, :func:`load_encoder`, :func:`load_eval_dataset`.
Importing this package is cheap and has no side effects; it never imports Ray or MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["load_encoder", "load_eval_dataset"]


def load_encoder(checkpoint_path: str | Path) -> torch.nn.Module:
    """The target encoder of a checkpoint, in eval mode on the CPU.

    ``forward(images [B, C, H, W] float) -> [B, D]`` average-pooled features (the I-JEPA evaluation protocol),
    for images preprocessed as :func:`load_eval_dataset` does.
    """
    from jepa_core.checkpoint import load_checkpoint
    from jepa_core.config import build_config
    from jepa_core.models import JepaEncoder, PooledEncoder

    state = load_checkpoint(checkpoint_path)
    cfg = build_config(overrides=[state["config"]])
    m = cfg.model
    encoder = JepaEncoder(
        cfg.data.image_size,
        m.patch_size,
        int(state["in_chans"]),
        m.embed_dim,
        m.depth,
        m.num_heads,
        m.mlp_ratio,
    )
    encoder.load_state_dict(state["target"])
    return PooledEncoder(encoder).eval().requires_grad_(False)


def load_eval_dataset(checkpoint_path: str | Path, split: str) -> torch.utils.data.Dataset:
    """``(image, label)`` pairs of ``split`` ("train" or "test"), preprocessed as in training."""
    from jepa_core.checkpoint import load_checkpoint
    from jepa_core.config import build_config
    from jepa_core.data import eval_dataset

    cfg = build_config(overrides=[load_checkpoint(checkpoint_path)["config"]])
    return eval_dataset(cfg.data.name, split, cfg.data.root, cfg.data.image_size)
