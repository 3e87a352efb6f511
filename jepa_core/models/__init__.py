"""I-JEPA networks: a timm ViT context/target encoder and a narrower ViT predictor (Assran et al., 2023).

The encoder (:mod:`.encoder`) is timm's ``VisionTransformer`` used as a library, with fixed 2D sin-cos
positions (:mod:`.pos_embed`) added before any patch is dropped. The predictor (:mod:`.predictor`) is the
paper's by default: each target block is predicted by full attention over the valid context tokens and that
block's mask tokens; ``one_pass=True`` (config ``predictor.one_pass``) selects a faster variant, a different
model. Contexts differ in length, so batches are right-padded and the token-wise layers run on packed valid
tokens (:mod:`.packing`). :mod:`.ijepa` holds the whole model with its objective and EMA step; :mod:`.build`
builds each network from a config, the one place that happens.
"""

from __future__ import annotations

from jepa_core.models.build import build_encoder, build_ijepa, build_predictor
from jepa_core.models.encoder import JepaEncoder, PooledEncoder
from jepa_core.models.ijepa import IJepa
from jepa_core.models.packing import Packing, gather_tokens, packable, packed_block
from jepa_core.models.pos_embed import sincos_pos_embed_2d
from jepa_core.models.predictor import JepaPredictor, predictor_attention_mask

__all__ = [
    "IJepa",
    "JepaEncoder",
    "JepaPredictor",
    "Packing",
    "PooledEncoder",
    "build_encoder",
    "build_ijepa",
    "build_predictor",
    "gather_tokens",
    "packable",
    "packed_block",
    "predictor_attention_mask",
    "sincos_pos_embed_2d",
]
