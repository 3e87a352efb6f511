"""Models from a trainer config: the one place each network is built (trainer, bench, ``load_encoder``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jepa_core.models.encoder import JepaEncoder
from jepa_core.models.ijepa import IJepa
from jepa_core.models.predictor import JepaPredictor
from jepa_core.models.weight_init import init_weights, rescale_blocks

if TYPE_CHECKING:
    from jepa_core.config import Config


def build_encoder(cfg: Config, in_chans: int) -> JepaEncoder:
    """The context (and target) encoder ``cfg`` describes, with timm's initialisation; the one place an
    encoder is built (``load_encoder`` loads a checkpoint's weights into it)."""
    m = cfg.model
    return JepaEncoder(
        cfg.data.image_size,
        m.patch_size,
        in_chans,
        m.embed_dim,
        m.depth,
        m.num_heads,
        m.mlp_ratio,
        m.drop_path,
    )


def build_predictor(cfg: Config, grid: int) -> JepaPredictor:
    """The predictor ``cfg`` describes, over a ``grid`` x ``grid`` patch grid, freshly initialised."""
    m, p = cfg.model, cfg.predictor
    return JepaPredictor(grid, m.embed_dim, p.embed_dim, p.depth, p.num_heads, m.mlp_ratio, p.one_pass)


def build_ijepa(cfg: Config, in_chans: int) -> IJepa:
    """The I-JEPA model ``cfg`` describes, freshly initialised; the one place a model is built.

    The encoder's blocks get I-JEPA's initialisation (truncated normal, residual projections shrunk with
    depth) before the predictor is built, so the draws from torch's global generator, and hence the weights
    under a seed, are those of every earlier version of this function.
    """
    encoder = build_encoder(cfg, in_chans)
    encoder.vit.blocks.apply(init_weights)
    rescale_blocks(encoder.vit.blocks)
    return IJepa(encoder, build_predictor(cfg, encoder.grid))
