"""One I-JEPA optimisation step, a plain function of the model, optimizer, batch, masks and schedule values.

The trainer, the bench and the naive baseline (:mod:`jepa_core.naive_step`) all call :func:`train_step`, so
they time and train the very same update.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from jepa_core.masks import BlockMaskSampler, MaskBatch
from jepa_core.models import IJepa, Packing


def fixed_context_length(sampler: BlockMaskSampler, device: torch.device) -> int | None:
    """The context length every batch is padded to on ``device``, or None to pack the valid tokens.

    On the CPU the token-wise layers run on the packed valid tokens (less work; shapes change from batch to
    batch, which costs nothing there). On other devices (CUDA) contexts are padded to the longest one the
    sampler can draw, :attr:`BlockMaskSampler.max_context`, and run in the padded layout: every step then has
    the same shapes, so ``torch.compile`` and CUDA graphs never recompile, at the price of computing the
    padded rows.
    """
    return None if device.type == "cpu" else sampler.max_context


def device_masks(
    host: MaskBatch, device: torch.device, fixed_length: int | None
) -> tuple[MaskBatch, Packing]:
    """The host masks on ``device`` with their :class:`Packing`, both built on the host before they move, so
    the device part of the step never waits for the host: packed with ``fixed_length`` None, else padded to
    ``fixed_length`` (:func:`fixed_context_length`)."""
    if fixed_length is None:
        return host.to(device), Packing.of(host.context_valid).to(device)
    padded = host.padded_to(fixed_length)
    return padded.to(device), Packing.padded(padded.context_valid).to(device)


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

    With ``masks`` and ``packing`` from :func:`device_masks` (built on the host) and the optimizer
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
