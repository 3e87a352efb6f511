"""Seeded, vectorised multi-block mask sampler for I-JEPA.

I-JEPA (Assran et al., 2023, "Self-Supervised Learning from Images with a Joint-Embedding Predictive
Architecture") trains a predictor to regress the target-encoder embeddings of ``K`` rectangular target
blocks from the embedding of one large context block from which every target patch has been removed.
This package samples those masks for a whole batch at once, without a Python loop over images.

Differences from the reference recipe, all deliberate:

* The knob is ``ratio``: the fraction of the patch grid covered by the *union* of the ``K`` target
  blocks, on average over batches. Blocks overlap and their sides are integers, so the per-block area
  that yields a given union fraction is found by a calibration done once per grid
  (:mod:`jepa_core.masks.calibration`).
* Each sample keeps its own context; the batch is padded (``context_valid``) instead of truncated to
  the smallest context as the reference collator does.
* Too-small contexts are repaired per sample (see :meth:`BlockMaskSampler.__call__`), never by
  dropping target blocks.

Modules: :mod:`.batch` (:class:`MaskBatch`, :func:`mask_stats`), :mod:`.calibration` (the union-ratio
curves), :mod:`.sampler` (:class:`BlockMaskSampler` and :func:`mask_sampler`, the one place a sampler is
built). Patch indices are flattened row-major: patch ``(r, c)`` of a ``grid_h x grid_w`` grid is
``r * grid_w + c``.
"""

from __future__ import annotations

from jepa_core.masks.batch import MaskBatch, mask_stats
from jepa_core.masks.sampler import BlockMaskSampler, mask_sampler

__all__ = ["BlockMaskSampler", "MaskBatch", "mask_sampler", "mask_stats"]
