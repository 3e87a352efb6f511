"""One batch of I-JEPA masks: context and target patch indices, their summary, and how they are packed.

Patch indices are flattened row-major: patch ``(r, c)`` of a ``grid_h x grid_w`` grid is ``r * grid_w + c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(eq=False)
class MaskBatch:
    """Context/target patch indices for one batch.

    Attributes:
        context_idx: ``LongTensor [B, Lc]``; each sample's context patch indices in ascending order,
            padded at the end with index 0 up to the largest context in the batch.
        context_valid: ``BoolTensor [B, Lc]``; ``True`` for real entries, ``False`` for padding.
        target_idx: ``LongTensor [B, K, T]``; ``K`` target blocks per sample, each ``T = bh * bw``
            patch indices in row-major order within the block. ``bh, bw`` are shared by the batch.
    """

    context_idx: torch.Tensor
    context_valid: torch.Tensor
    target_idx: torch.Tensor

    def to(self, device: torch.device | str) -> MaskBatch:
        """Returns a copy with every tensor moved to ``device``."""
        return MaskBatch(
            context_idx=self.context_idx.to(device),
            context_valid=self.context_valid.to(device),
            target_idx=self.target_idx.to(device),
        )

    def padded_to(self, length: int) -> MaskBatch:
        """This batch with its contexts right-padded to ``length`` entries (index 0, not valid).

        The device path of the trainer pads every batch to one length per configuration
        (:attr:`jepa_core.masks.BlockMaskSampler.max_context`), so that shapes never change from step to step.

        Raises:
            ValueError: A context of this batch is longer than ``length``.
        """
        width = self.context_idx.shape[1]
        if width > length:
            raise ValueError(f"a context of {width} entries does not fit in a length of {length}")
        pad = (0, length - width)
        return MaskBatch(
            context_idx=torch.nn.functional.pad(self.context_idx, pad, value=0),
            context_valid=torch.nn.functional.pad(self.context_valid, pad, value=False),
            target_idx=self.target_idx,
        )

    @property
    def context_counts(self) -> torch.Tensor:
        """``LongTensor [B]``: number of real context patches per sample."""
        return self.context_valid.sum(dim=1)

    def target_union(self, num_patches: int) -> torch.Tensor:
        """``BoolTensor [B, N]``: patches covered by at least one of the ``K`` target blocks."""
        batch = self.target_idx.shape[0]
        union = torch.zeros(batch, num_patches, dtype=torch.bool, device=self.target_idx.device)
        return union.scatter_(1, self.target_idx.reshape(batch, -1), True)


def mask_stats(mask: MaskBatch, num_patches: int) -> dict[str, float]:
    """Summarises a mask batch for benchmarks and logs.

    Args:
        mask: The batch to describe.
        num_patches: Number of patches ``N`` of the grid.

    Returns:
        ``context_patches_mean`` (mean context size), ``target_patches_mean`` (mean size of the union
        of the target blocks) and ``target_ratio_mean`` (that size divided by ``N``).
    """
    union = mask.target_union(num_patches).sum(dim=1).double().mean().item()
    return {
        "context_patches_mean": mask.context_counts.double().mean().item(),
        "target_patches_mean": union,
        "target_ratio_mean": union / num_patches,
    }


def pack_indices(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Packs a ``BoolTensor [B, N]`` into ascending, end-padded indices plus a validity mask.

    Returns:
        ``(idx, valid)``, both ``[B, W]`` with ``W`` the largest row count: each row's selected patch
        indices in ascending order, padded with index 0, and ``True`` on the real entries.
    """
    n = mask.shape[1]
    counts = mask.sum(dim=1)
    width = int(counts.max())
    pos = torch.arange(n, device=mask.device)
    # Selected patches sort first (key = index), unselected after them (key = index + N); the keys are
    # unique, so one sort yields each row's selected indices in ascending order.
    key = torch.where(mask, pos, pos + n)
    idx = torch.sort(key, dim=1).values[:, :width]
    valid = torch.arange(width, device=mask.device)[None, :] < counts[:, None]
    return torch.where(valid, idx, 0), valid
