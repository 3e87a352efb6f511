"""One I-JEPA optimisation step, a plain function of the model, optimizer, batch, masks and schedule values.

The trainer, the bench and the naive baseline (:mod:`jepa_core.naive_step`) all call :func:`train_step`, so
they time and train the very same update.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from jepa_core.masks import MaskBatch
from jepa_core.models import IJepa, Packing


def train_step(
    model: IJepa,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: MaskBatch,
    *,
    lr: float,
    wd: float,
    momentum: float,
    loss_kind: str,
    amp: torch.dtype | None,
    grad_clip: float,
    loss_fn: Callable[[IJepa, torch.Tensor, MaskBatch, str], torch.Tensor] | None = None,
    packing: Packing | None = None,
) -> torch.Tensor:
    """One optimisation step: I-JEPA loss, AdamW update of encoder and predictor, EMA of the target.

    With ``packing`` built on the host (``Packing.of(host_masks.context_valid).to(device)``) and the optimizer
    from :func:`jepa_core.optim.make_optimizer`, the step reads nothing back from the device: no host
    synchronisation (``tests/jepa_core/test_host_sync.py`` counts them).

    Returns:
        The detached loss, still on the device (reading it is the caller's choice of when to synchronise).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group["apply_wd"]:
            group["weight_decay"] = wd
    with torch.autocast(images.device.type, dtype=amp, enabled=amp is not None):
        if loss_fn is None:
            loss = model.loss(
                images, masks.context_idx, masks.context_valid, masks.target_idx, loss_kind, packing
            )
        else:  # e.g. the naive baseline step (jepa_core.naive_step), for benchmarks
            loss = loss_fn(model, images, masks, loss_kind)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    optimizer.step()
    model.update_target(momentum)
    return loss.detach()
