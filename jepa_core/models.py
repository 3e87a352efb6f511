"""I-JEPA networks: a timm ViT context/target encoder and a narrower ViT predictor (Assran et al., 2023).

The encoder is timm's ``VisionTransformer`` used as a library (patch embedding and blocks), with no class
token and fixed 2D sin-cos positional embeddings added before any patch is dropped, so a context encoder that
only sees the visible patches still knows where each one sits.

The predictor gets the context tokens plus one learnable mask token per target patch (carrying that patch's
positional embedding) and predicts the target encoder's embedding of every target patch. All target blocks are
predicted in a single pass: an attention mask lets each block's mask tokens see the context and their own
block only, and lets context tokens see only the context. That is exactly the computation of running the
predictor once per block on the same context (with context tokens blind to mask tokens), without repeating
the context K times.

Contexts differ in length from image to image, so a batch of them is right-padded. In the context encoder the
token-wise layers (layer norms, the qkv/projection/MLP matmuls) run on the valid tokens only, packed into one
``(N, D)`` matrix; only attention sees the padded ``(B, L)`` layout, with padded keys masked out. See
:func:`packed_block`.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from jepa_core.config import Config


def sincos_pos_embed_2d(grid_h: int, grid_w: int, dim: int) -> torch.Tensor:
    """Fixed 2D sin-cos positional embeddings ``[grid_h * grid_w, dim]`` (half the channels per axis)."""
    if dim % 4:
        raise ValueError(f"embedding dim {dim} must be divisible by 4 for 2D sin-cos positions")
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    rows, cols = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64), torch.arange(grid_w, dtype=torch.float64), indexing="ij"
    )

    def axis(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)  # (N, dim/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (N, dim/2)

    return torch.cat([axis(rows), axis(cols)], dim=1).float()


def _gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x`` (B, N, D), ``idx`` (B, L) -> (B, L, D)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Packing(NamedTuple):
    """Where the valid tokens of a right-padded ``(B, L)`` batch sit.

    Attributes:
        index: ``(N,)`` flat positions in ``B * L`` of the valid tokens, in order.
        batch: B.
        length: L.
        key_ok: ``(B, 1, 1, L)`` bool attention mask (False on padded keys); None when nothing is padded.
    """

    index: torch.Tensor
    batch: int
    length: int
    key_ok: torch.Tensor | None

    @classmethod
    def of(cls, valid: torch.Tensor) -> Packing:
        """The packing of a ``(B, L)`` validity mask."""
        b, length = valid.shape
        index = valid.reshape(-1).nonzero().squeeze(1)
        padded = index.shape[0] < b * length
        return cls(index, b, length, valid[:, None, None, :] if padded else None)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, ...)`` -> ``(N, ...)`` valid tokens."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, ...)`` -> ``(B, L, ...)`` with zeros on padding."""
        out = x.new_zeros(self.batch * self.length, *x.shape[1:]).index_copy(0, self.index, x)
        return out.view(self.batch, self.length, *x.shape[1:])


def packable(blk: Block) -> bool:
    """True if ``blk`` computes the same on packed tokens as on a padded batch.

    Stochastic depth drops whole samples, which packed tokens no longer delimit, so a block whose drop path is
    active (training with a non-zero rate) is not packable.
    """
    if getattr(blk.attn, "gate", None) is not None:
        return False
    return not any(
        isinstance(dp, DropPath) and dp.drop_prob > 0 and dp.training
        for dp in (blk.drop_path1, blk.drop_path2)
    )


def packed_block(blk: Block, x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """timm ``Block`` forward on packed tokens: ``(N, D)`` -> ``(N, D)``.

    Equals ``blk(padded, attn_mask=packing.key_ok)`` on the valid tokens. Only attention is computed on the
    padded layout (padded queries are computed, then dropped); everything else costs N tokens, not B * L.
    """
    a = blk.attn
    qkv = packing.unpack(a.qkv(blk.norm1(x)))  # (B, L, 3D)
    q, k, v = qkv.view(packing.batch, packing.length, 3, a.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = a.q_norm(q), a.k_norm(k)
    drop = a.attn_drop.p if a.training else 0.0
    attended = F.scaled_dot_product_attention(
        q, k, v, attn_mask=packing.key_ok, dropout_p=drop
    )  # (B, H, L, d)
    attended = packing.pack(attended.transpose(1, 2).flatten(2))  # (N, D)
    x = x + blk.drop_path1(blk.ls1(a.proj_drop(a.proj(a.norm(attended)))))
    return x + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(x))))


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
            x = _gather_tokens(x, keep_idx)
            if packing is None and keep_valid is not None:
                packing = Packing.of(keep_valid)
        if packing is None or packing.key_ok is None:
            for blk in self.vit.blocks:
                x = blk(x)
            return self.vit.norm(x)
        if not all(packable(blk) for blk in self.vit.blocks):
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


class JepaPredictor(nn.Module):
    """Narrow ViT that predicts target-patch embeddings from context tokens and positional mask tokens.

    Args:
        grid: Patch grid side.
        encoder_dim: Width of the encoder tokens it reads and predicts.
        embed_dim: The predictor's own (narrower) width.
        depth: Number of transformer blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width over ``embed_dim``.
    """

    def __init__(
        self, grid: int, encoder_dim: int, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(encoder_dim, embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.register_buffer("pos_embed", sincos_pos_embed_2d(grid, grid, embed_dim), persistent=False)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.proj = nn.Linear(embed_dim, encoder_dim)
        trunc_normal_(self.mask_token, std=0.02)
        self.apply(_init_weights)
        _rescale_blocks(self.blocks)

    def forward(
        self,
        context: torch.Tensor,
        context_idx: torch.Tensor,
        context_valid: torch.Tensor,
        target_idx: torch.Tensor,
    ) -> torch.Tensor:
        """Predicts every target block in one pass.

        Args:
            context: ``(B, Lc, De)`` context-encoder tokens.
            context_idx: ``(B, Lc)`` their patch indices.
            context_valid: ``(B, Lc)`` bool, False on padding.
            target_idx: ``(B, K, T)`` patch indices of K target blocks of T patches.

        Returns:
            ``(B, K, T, De)`` predicted target embeddings.
        """
        b, k, t = target_idx.shape
        lc = context.shape[1]
        x = self.embed(context) + self.pos_embed[context_idx]  # (B, Lc, Dp)
        queries = self.mask_token + self.pos_embed[target_idx.reshape(b, k * t)]  # (B, K*T, Dp)
        x = torch.cat([x, queries], dim=1)
        attn_mask = predictor_attention_mask(context_valid, k, t)
        for blk in self.blocks:
            x = blk(x, attn_mask=attn_mask)
        out = self.proj(self.norm(x[:, lc:]))
        return out.reshape(b, k, t, -1)


def predictor_attention_mask(context_valid: torch.Tensor, num_blocks: int, block_len: int) -> torch.Tensor:
    """Boolean ``(B, 1, L, L)`` mask (True = may attend) over ``[context; block_1; ...; block_K]``.

    Context queries see valid context keys only; a block's mask tokens see valid context keys and their own
    block, never another block's tokens, so each block's prediction is independent of the others.
    """
    b, lc = context_valid.shape
    n_t = num_blocks * block_len
    block_id = torch.arange(num_blocks, device=context_valid.device).repeat_interleave(block_len)
    same_block = block_id[:, None] == block_id[None, :]  # (K*T, K*T)
    mask = torch.zeros(b, lc + n_t, lc + n_t, dtype=torch.bool, device=context_valid.device)
    mask[:, :, :lc] = context_valid[:, None, :]
    mask[:, lc:, lc:] = same_block
    return mask[:, None]


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def _rescale_blocks(blocks: nn.ModuleList) -> None:
    """Shrinks each residual branch's output projection with depth (as I-JEPA does) for a stable start."""
    for i, blk in enumerate(blocks, start=1):
        blk.attn.proj.weight.data.div_(math.sqrt(2.0 * i))
        blk.mlp.fc2.weight.data.div_(math.sqrt(2.0 * i))


class IJepa(nn.Module):
    """Context encoder, predictor and EMA target encoder of one I-JEPA model."""

    def __init__(self, cfg: Config, in_chans: int) -> None:
        super().__init__()
        m, p = cfg.model, cfg.predictor
        self.encoder = JepaEncoder(
            cfg.data.image_size,
            m.patch_size,
            in_chans,
            m.embed_dim,
            m.depth,
            m.num_heads,
            m.mlp_ratio,
            m.drop_path,
        )
        self.encoder.vit.blocks.apply(_init_weights)
        _rescale_blocks(self.encoder.vit.blocks)
        self.predictor = JepaPredictor(
            self.encoder.grid, m.embed_dim, p.embed_dim, p.depth, p.num_heads, m.mlp_ratio
        )
        # The target encoder is never trained by gradients, only by the EMA of the context encoder.
        self.target = copy.deepcopy(self.encoder)
        self.target.requires_grad_(False)

    def compile_for_training(self) -> None:
        """``torch.compile`` the three networks in place (state-dict keys unchanged).

        Context lengths vary from batch to batch, so shapes are compiled as dynamic to avoid recompiling.
        """
        self.encoder.compile(dynamic=True)
        self.predictor.compile(dynamic=True)
        self.target.compile()

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """``target <- momentum * target + (1 - momentum) * encoder``, one fused op over all tensors."""
        tgt = list(self.target.parameters())
        src = [p.detach() for p in self.encoder.parameters()]
        torch._foreach_lerp_(tgt, src, 1.0 - momentum)

    def loss(
        self,
        images: torch.Tensor,
        context_idx: torch.Tensor,
        context_valid: torch.Tensor,
        target_idx: torch.Tensor,
        kind: str = "l2",
    ) -> torch.Tensor:
        """The I-JEPA objective on one batch.

        Targets are the target encoder's layer-normed embeddings of the full image at the target patches; the
        loss is their L2 (mean squared error) or smooth-L1 distance to the predictions.
        """
        b, k, t = target_idx.shape
        with torch.no_grad():
            h = self.target(images)
            h = F.layer_norm(h, (h.shape[-1],))
            targets = _gather_tokens(h, target_idx.reshape(b, k * t)).reshape(b, k, t, -1)
        # Computed outside the compiled encoder: where the valid context tokens are, and whether any context
        # is padded at all (without padding, attention runs unmasked, a faster kernel).
        packing = Packing.of(context_valid)
        z = self.encoder(images, context_idx, packing=packing)
        pred = self.predictor(z, context_idx, context_valid, target_idx)
        if kind == "smooth_l1":
            return F.smooth_l1_loss(pred.float(), targets.float())
        return F.mse_loss(pred.float(), targets.float())


class PooledEncoder(nn.Module):
    """``forward(images (B, C, H, W)) -> (B, D)`` average-pooled target-encoder features."""

    def __init__(self, encoder: JepaEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.pooled(images)
