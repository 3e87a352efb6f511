"""Matching this project's ``mask.ratio`` to the official collator's predicted tokens per image.

The official collator cuts every context of a batch to the batch's smallest; this project's sampler keeps
each sample's own, so the two cannot be matched on the context. They are matched on the predicted tokens per
image instead (``K`` blocks of ``T`` patches, overlaps counted): :func:`match_mask_ratio` finds the
``mask.ratio`` at which this project's mean equals the official one.
"""

from __future__ import annotations

import statistics

import torch

from jepa_core.bench.official_code import OfficialCode
from jepa_core.bench.official_step import official_collator
from jepa_core.config import Config
from jepa_core.masks import mask_sampler

TOKENS_TOLERANCE = 0.10  # predicted tokens per image must match the official mean within this fraction


def official_predicted_tokens(code: OfficialCode, cfg: Config, draws: int) -> float:
    """Mean predicted tokens per image of the official collator over its first ``draws`` iterations (their
    block size is seeded by the iteration number); each call collates one dummy sample."""
    collator = official_collator(code, cfg)
    with torch.random.fork_rng():  # their block positions come from the global generator
        sizes = [sum(m.shape[1] for m in collator([(torch.zeros(()), 0)])[2]) for _ in range(draws)]
    return statistics.fmean(sizes)


def project_predicted_tokens(cfg: Config, ratio: float, draws: int, seed: int = 0) -> float:
    """Mean ``K * T`` of this project's sampler for ``cfg.mask`` at ``mask.ratio = ratio``, over ``draws``
    batches (``T`` is drawn per batch)."""
    grid, m = cfg.data.image_size // cfg.model.patch_size, cfg.mask
    sampler = mask_sampler(m, grid, ratio)
    gen = torch.Generator().manual_seed(seed)  # the same seed for every ratio tried: a smoother curve
    return statistics.fmean(sampler(1, gen).target_idx[0].numel() for _ in range(draws))  # K * T each


def match_mask_ratio(cfg: Config, tokens: float, draws: int, iters: int = 12) -> float:
    """The ``mask.ratio`` at which this project's mean predicted tokens per image is ``tokens``: bisection
    on (0.02, 0.95), where they grow with the ratio; 12 halvings leave an interval of about 2e-4."""
    lo, hi = 0.02, 0.95
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if project_predicted_tokens(cfg, mid, draws) < tokens else (lo, mid)
    return round((lo + hi) / 2, 4)
