"""The optimizer: AdamW over the trainable parameters, built here and nowhere else.

The trainer, the bench and the side-by-side with the official step all take it from :func:`adamw`, so a
setting such as the betas cannot be lost in one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from jepa_core.config import Config, OptimConfig

if TYPE_CHECKING:
    from jepa_core.models import IJepa


def param_groups(model: IJepa) -> list[dict[str, Any]]:
    """Weight decay on matrices only: biases, norms and the mask token are not decayed."""
    decay, no_decay = [], []
    for module in (model.encoder, model.predictor):
        for p in module.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "apply_wd": True}, {"params": no_decay, "apply_wd": False, "weight_decay": 0.0}]


def adamw(groups: list[dict[str, Any]], optim: OptimConfig) -> torch.optim.Optimizer:
    """AdamW over ``groups`` with the configured lr, weight decay and betas (the trainer resets the lr and
    weight decay every step from its schedules).

    Fused on every device: one kernel per step, and its step counters stay on the device, where the
    single-tensor AdamW reads each parameter's step back to the host (47 reads per step at the tiny test
    config).
    """
    betas = (optim.beta1, optim.beta2)
    return torch.optim.AdamW(groups, lr=optim.lr, weight_decay=optim.weight_decay, betas=betas, fused=True)


def make_optimizer(model: IJepa, cfg: Config) -> torch.optim.Optimizer:
    """:func:`adamw` over :func:`param_groups` of ``model``."""
    return adamw(param_groups(model), cfg.optim)
