"""Frozen features of an encoder: images in, float32 ``[N, D]`` features out, without gradients.

An ``nn.Module`` encoder runs in eval mode for the duration (no dropout, no drop-path, no norm-statistics
updates) and gets each submodule's own train/eval flag back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Encoder = Callable[[torch.Tensor], torch.Tensor]
Transform = Callable[[torch.Tensor], torch.Tensor]


class _EvalMode:
    """Temporarily put an ``nn.Module`` encoder in eval mode, restoring each submodule's own flag after.

    Frozen-feature evaluation must not use dropout / drop-path or update norm statistics. Restoring
    per-submodule flags (rather than calling ``train(True)``) keeps deliberately frozen submodules frozen.
    """

    def __init__(self, encode: object) -> None:
        self._modules: list[tuple[nn.Module, bool]] = []
        if isinstance(encode, nn.Module):
            self._modules = [(m, m.training) for m in encode.modules()]
            self._root: nn.Module | None = encode
        else:
            self._root = None

    def __enter__(self) -> None:
        if self._root is not None:
            self._root.eval()

    def __exit__(self, *exc: object) -> None:
        for module, was_training in self._modules:
            module.training = was_training


def _encode_batch(encode: Encoder, batch: torch.Tensor, transform: Transform | None) -> torch.Tensor:
    """Apply ``transform`` then ``encode`` and check the result is a 2-D ``[b, D]`` feature batch."""
    if transform is not None:
        batch = transform(batch)
    feats = encode(batch)
    if feats.dim() != 2 or feats.shape[0] != batch.shape[0]:
        raise ValueError(f"encode must map a batch of {batch.shape[0]} to [b, D], got {tuple(feats.shape)}")
    # float32 regardless of autocast: probes and SVDs downstream are not reliable in half precision.
    return feats.float()


@torch.no_grad()
def extract_features(
    encode: Encoder,
    images: torch.Tensor,
    *,
    batch_size: int = 512,
    transform: Transform | None = None,
) -> torch.Tensor:
    """Encode a tensor of images in batches, without gradients.

    Args:
        encode: Maps a (transformed) batch ``[b, ...]`` to features ``[b, D]``. If it is an ``nn.Module`` it
            is switched to eval mode for the duration and its train/eval flags are restored afterwards.
        images: Tensor ``[N, ...]`` of any dtype (e.g. uint8 images kept compact in memory).
        batch_size: Number of images encoded at once.
        transform: Optional per-batch transform applied before ``encode`` (e.g. uint8 -> normalized float);
            applied per batch so the whole data set is never materialized as float.

    Returns:
        float32 features ``[N, D]`` on ``images.device``.

    Raises:
        ValueError: If ``images`` is empty or ``batch_size`` is not positive.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if images.shape[0] == 0:
        raise ValueError("cannot extract features from an empty tensor (feature dim unknown)")
    chunks: list[torch.Tensor] = []
    with _EvalMode(encode):
        for start in range(0, images.shape[0], batch_size):
            feats = _encode_batch(encode, images[start : start + batch_size], transform)
            chunks.append(feats.to(images.device))
    return torch.cat(chunks)
