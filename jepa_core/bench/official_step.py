"""The official I-JEPA training step, built from an imported checkout and ready to time.

:class:`OfficialStepBench` builds the official encoder, predictor and target encoder with this config's
widths and depths (their sin-cos positional embeddings and their constructors' init) and its
``MaskCollator`` with the paper's mask settings (:data:`OFFICIAL_MASKS`). Its step is timed as
``src/train.py`` runs it: the collator on a list of ``(image, label)`` samples, the target encoder on the
full image with a layer norm over features, the context encoder on the context mask, the predictor, smooth-L1
loss, backward, AdamW (this config's lr, weight decay and betas; their parameter groups), then the EMA of the
target encoder one parameter tensor at a time. Left out, as bookkeeping this project's step does not do
either: the lr/wd scheduler steps, gradient-norm logging, the loss all-reduce.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jepa_core.bench.flops import count_flops
from jepa_core.bench.official_code import OfficialCode
from jepa_core.bench.step import CHANNELS, StepBench
from jepa_core.bench.timing import Timing, timed
from jepa_core.config import Config

# The mask settings of every official config (configs/in1k_*.yaml): target blocks of scale 0.15-0.2 and
# aspect 0.75-1.5, one context block of scale 0.85-1.0 that excludes them, at least 10 patches kept.
OFFICIAL_MASKS: dict[str, Any] = {
    "pred_mask_scale": (0.15, 0.2),
    "enc_mask_scale": (0.85, 1.0),
    "aspect_ratio": (0.75, 1.5),
    "nenc": 1,
    "min_keep": 10,
    "allow_overlap": False,
}
MIN_OFFICIAL_GRID = 10  # smaller grids get target blocks not above min_keep: their collator loops forever


def official_collator(code: OfficialCode, cfg: Config) -> Any:
    """The official ``MaskCollator`` for this config's image and patch size and number of target blocks."""
    size, patch, npred = cfg.data.image_size, cfg.model.patch_size, cfg.mask.num_targets
    return code.multiblock.MaskCollator(input_size=size, patch_size=patch, npred=npred, **OFFICIAL_MASKS)


class OfficialStepBench:
    """The official models, optimiser and collator, ready to time the official step on a bench's images.

    Args:
        code: The imported official modules.
        cfg: Widths and depths (``model.*``, ``predictor.*``), image size, optimiser and EMA settings.
        images_from: The bench whose images and augmentation are used, with a generator seeded like its own,
            so both see the same crops in the same order.
    """

    def __init__(self, code: OfficialCode, cfg: Config, images_from: StepBench) -> None:
        torch.manual_seed(cfg.train.seed)  # the collator draws block positions from the global generator
        self.code, self.cfg, self.device, self.amp = code, cfg, images_from.device, images_from.amp
        self.images, self.aug = images_from.images, images_from.aug
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        m, p = cfg.model, cfg.predictor
        # The arguments their vit_* and vit_predictor builders fix; widths and depths are this config's.
        common = {"mlp_ratio": m.mlp_ratio, "qkv_bias": True, "norm_layer": partial(nn.LayerNorm, eps=1e-6)}
        chans = CHANNELS.get(cfg.data.name, 3)
        enc = {"img_size": [cfg.data.image_size], "patch_size": m.patch_size, "in_chans": chans}
        self.encoder = code.vit.VisionTransformer(
            **enc, embed_dim=m.embed_dim, depth=m.depth, num_heads=m.num_heads, **common
        )
        pred = {"num_patches": self.encoder.patch_embed.num_patches, "embed_dim": m.embed_dim}
        self.predictor = code.vit.VisionTransformerPredictor(
            **pred, predictor_embed_dim=p.embed_dim, depth=p.depth, num_heads=p.num_heads, **common
        )
        # Their constructors' init; init_model's re-draw of it is left out: weights do not change the cost.
        nets = (self.encoder.to(self.device), self.predictor.to(self.device))
        self.target = copy.deepcopy(self.encoder).requires_grad_(False)
        # Deliberately not jepa_core.optim: the official step is timed with the official optimiser, their
        # non-fused AdamW over their groups (src/helper.py:init_opt: no weight decay on biases and 1-d
        # parameters), with only the lr, weight decay and betas taken from this config.
        decay = [[q for n, q in net.named_parameters() if "bias" not in n and q.ndim != 1] for net in nets]
        rest = [[q for n, q in net.named_parameters() if "bias" in n or q.ndim == 1] for net in nets]
        groups = [{"params": g} for g in decay] + [{"params": g, "weight_decay": 0.0} for g in rest]
        o, betas = cfg.optim, (cfg.optim.beta1, cfg.optim.beta2)
        self.optimizer = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay, betas=betas)
        self.collator = official_collator(code, cfg)
        self.mask_stats: list[dict[str, float]] = []

    def batch(self) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The next augmented batch through the official collator: images, context masks, target masks.

        Records the batch's context size (one for all samples: the collator truncates), its predicted tokens
        per image (the target blocks' sizes summed) and the mean size of their union per image.
        """
        x = self.aug(self.images, self.generator)
        collated, masks_enc, masks_pred = self.collator([(img, 0) for img in x])
        union = torch.zeros(x.shape[0], self.encoder.patch_embed.num_patches, dtype=torch.bool)
        union = union.scatter_(1, torch.cat(masks_pred, dim=1), True).sum(dim=1).double().mean().item()
        context, tokens = (float(sum(m.shape[1] for m in ms)) for ms in (masks_enc, masks_pred))
        stats = {"context_patches_mean": context, "predicted_tokens_mean": tokens}
        self.mask_stats.append({**stats, "target_union_patches_mean": union})
        dev = self.device
        return collated[0].to(dev), [m.to(dev) for m in masks_enc], [m.to(dev) for m in masks_pred]

    def step(self) -> torch.Tensor:
        """One official training step (what is in it and what is not: see the module docstring)."""
        imgs, masks_enc, masks_pred = self.batch()
        apply_masks, tensors = self.code.mask_utils.apply_masks, self.code.tensors
        with torch.autocast(imgs.device.type, dtype=self.amp, enabled=self.amp is not None):
            with torch.no_grad():
                h = self.target(imgs)
                h = F.layer_norm(h, (h.size(-1),))
                # Block-major, each block repeated once per context mask, as the predictor's outputs are.
                h = tensors.repeat_interleave_batch(apply_masks(h, masks_pred), len(h), repeat=len(masks_enc))
            z = self.predictor(self.encoder(imgs, masks_enc), masks_enc, masks_pred)
            loss = F.smooth_l1_loss(z, h)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        m = self.cfg.ema.momentum_start
        with torch.no_grad():  # one update per parameter tensor, as their loop does (this project fuses them)
            for online, target in zip(self.encoder.parameters(), self.target.parameters(), strict=True):
                target.mul_(m).add_((1.0 - m) * online.detach())
        return loss.detach()

    def flops_per_img(self, reps: int = 2) -> float:
        """FLOPs of one official step (the bench's counter), averaged over ``reps`` batches, per image."""
        return sum(count_flops(self.step) for _ in range(reps)) / reps / self.cfg.train.batch_size

    def time_step(self) -> Timing:
        """Wall and CPU seconds of one official step."""
        return timed(self.step, self.device)
