"""The I-JEPA context and target encoder: timm's ViT over patch tokens, optionally a per-sample subset.

The encoder is timm's ``VisionTransformer`` used as a library (patch embedding and blocks), with no class
token and fixed 2D sin-cos positional embeddings added before any patch is dropped, so a context encoder that
only sees the visible patches still knows where each one sits. Where a batch of contexts is padded, the
token-wise layers run on the packed valid tokens (:mod:`jepa_core.models.packing`).
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from jepa_core.models.packing import Packing, gather_tokens, packable, packed_block
from jepa_core.models.pos_embed import sincos_pos_embed_2d


class JepaEncoder(nn.Module):
    """ViT encoder over patch tokens, optionally restricted to a per-sample subset of patches.

    Args:
        image_size: Input height and width in pixels.
        patch_size: Patch side in pixels.
        in_chans: Image channels.
        embed_dim: Token width.
        depth: Number of transformer blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width over ``embed_dim``.
        drop_path: Stochastic-depth rate of the last block.
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        in_chans: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.vit = VisionTransformer(
            img_size=image_size,
            patch_size=patch_size,
            in_chans=in_chans,
            num_classes=0,
            global_pool="avg",
            class_token=False,
            pos_embed="none",
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            drop_path_rate=drop_path,
            fc_norm=False,
        )
        self.grid = image_size // patch_size
        self.embed_dim = embed_dim
        self.register_buffer(
            "pos_embed", sincos_pos_embed_2d(self.grid, self.grid, embed_dim).unsqueeze(0), persistent=False
        )

    @property
    def num_patches(self) -> int:
        """Patches per image, ``grid * grid``."""
        return self.grid * self.grid

    def forward(
        self,
        images: torch.Tensor,
        keep_idx: torch.Tensor | None = None,
        keep_valid: torch.Tensor | None = None,
        packing: Packing | None = None,
    ) -> torch.Tensor:
        """Encodes images into normalised patch tokens.

        Args:
            images: ``(B, C, H, W)`` float.
            keep_idx: ``(B, L)`` patch indices to keep (the context); None keeps every patch.
            keep_valid: ``(B, L)`` bool, False where ``keep_idx`` is padding; padded keys are masked out.
            packing: ``Packing.of(keep_valid)`` if the caller has it already.

        Returns:
            ``(B, L, D)`` tokens after the final norm (``L = N`` without ``keep_idx``); zeros on padding.
        """
        x = self.vit.patch_embed(images) + self.pos_embed  # (B, N, D)
        if keep_idx is not None:
            x = gather_tokens(x, keep_idx)
            if packing is None and keep_valid is not None:
                packing = Packing.of(keep_valid)
        if packing is None or packing.key_ok is None:
            for blk in self.vit.blocks:
                x = blk(x)
            return self.vit.norm(x)
        if not packing.packed or not all(packable(blk) for blk in self.vit.blocks):
            for blk in self.vit.blocks:
                x = blk(x, attn_mask=packing.key_ok)
            return self.vit.norm(x).masked_fill(~packing.key_ok[:, 0, 0, :, None], 0.0)
        x = packing.pack(x)
        for blk in self.vit.blocks:
            x = packed_block(blk, x, packing)
        return packing.unpack(self.vit.norm(x))

    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        """Average-pooled features ``(B, D)`` of the whole image: the I-JEPA evaluation protocol."""
        return self.forward(images).mean(dim=1)


class PooledEncoder(nn.Module):
    """``forward(images (B, C, H, W)) -> (B, D)`` average-pooled target-encoder features.

    What :func:`jepa_core.load_encoder` returns; the state dict is the wrapped encoder's under ``encoder.``.

    Args:
        encoder: The (target) encoder whose :meth:`JepaEncoder.pooled` features it returns.
    """

    def __init__(self, encoder: JepaEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` float images -> ``(B, D)`` features averaged over every patch."""
        return self.encoder.pooled(images)
