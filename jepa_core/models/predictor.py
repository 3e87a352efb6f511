"""The I-JEPA predictor: a narrow ViT that predicts target-patch embeddings (Assran et al., 2023).

The predictor gets the context tokens plus one learnable mask token per target patch (carrying that patch's
positional embedding) and predicts the target encoder's embedding of every target patch. By default it is the
paper's predictor: each target block is predicted by its own pass with full attention over the valid context
tokens and that block's mask tokens, so the context tokens also attend to the block's mask tokens. As in the
official code, the K passes of a batch run as one pass over the context repeated K times along the batch.
``one_pass=True`` (config ``predictor.one_pass``) selects a faster variant, a different model: all blocks in
one pass whose attention mask lets each block's mask tokens see the context and their own block and lets
context tokens see only the context, never a mask token (:func:`predictor_attention_mask`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from jepa_core.models.packing import Packing, packable, packed_block
from jepa_core.models.pos_embed import sincos_pos_embed_2d
from jepa_core.models.weight_init import init_weights, rescale_blocks


class JepaPredictor(nn.Module):
    """Narrow ViT that predicts target-patch embeddings from context tokens and positional mask tokens.

    By default it is the paper's predictor (Assran et al., 2023): each target block is predicted by its own
    pass with full attention over ``[valid context tokens; that block's mask tokens]``, so context tokens
    attend to the block's mask tokens and their states differ from block to block after the first layer.
    The K passes of a batch are one pass over ``B * K`` sequences, as in the official code; padded context
    keys are masked out of attention and, where there is padding, the token-wise layers run on packed valid
    tokens (:meth:`_per_block_packed`).

    ``one_pass=True`` selects a faster variant, a different model: all K blocks in one pass over
    ``[context; block_1; ...; block_K]`` with a block-diagonal attention mask in which context tokens attend
    to context tokens only (never to mask tokens) and each block's mask tokens attend to the context and
    their own block. The context is then attended once instead of K times, but its token states no longer
    depend on the block being predicted. Layer 1's mask tokens read the same context states either way, so
    with one layer the two agree; from two layers on the variant in general predicts something else.

    Args:
        grid: Patch grid side.
        encoder_dim: Width of the encoder tokens it reads and predicts.
        embed_dim: The predictor's own (narrower) width.
        depth: Number of transformer blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width over ``embed_dim``.
        one_pass: Use the one-pass variant instead of the paper's per-block predictor.
    """

    def __init__(
        self,
        grid: int,
        encoder_dim: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        one_pass: bool = False,
    ) -> None:
        super().__init__()
        self.one_pass = one_pass
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
        self.apply(init_weights)
        rescale_blocks(self.blocks)

    def forward(
        self,
        context: torch.Tensor,
        context_idx: torch.Tensor,
        context_valid: torch.Tensor,
        target_idx: torch.Tensor,
        packing: Packing | None = None,
    ) -> torch.Tensor:
        """Predicts every target block: the paper's way, or the one-pass variant's (``one_pass``).

        Args:
            context: ``(B, Lc, De)`` context-encoder tokens (any values on padding).
            context_idx: ``(B, Lc)`` their patch indices.
            context_valid: ``(B, Lc)`` bool, False on padding.
            target_idx: ``(B, K, T)`` patch indices of K target blocks of T patches.
            packing: ``Packing.of(context_valid)`` if the caller has it already (computing it costs a host
                sync); the one-pass variant does not use it.

        Returns:
            ``(B, K, T, De)`` predicted target embeddings.
        """
        if self.one_pass:
            x = self.embed(context) + self.pos_embed[context_idx]  # (B, Lc, Dp)
            return self._one_pass(x, context_valid, target_idx)
        packing = Packing.of(context_valid) if packing is None else packing
        if packing.packed and all(packable(blk) for blk in self.blocks):
            return self._per_block_packed(context, context_idx, target_idx, packing)
        return self._per_block_padded(context, context_idx, target_idx, packing.key_ok)

    def _queries(self, target_idx: torch.Tensor) -> torch.Tensor:
        """``(B, K, T)`` -> ``(B*K, T, Dp)`` mask tokens carrying their target patch's position."""
        b, k, t = target_idx.shape
        return self.mask_token + self.pos_embed[target_idx.reshape(b * k, t)]

    def _per_block_padded(
        self,
        context: torch.Tensor,
        context_idx: torch.Tensor,
        target_idx: torch.Tensor,
        key_ok: torch.Tensor | None,
    ) -> torch.Tensor:
        """The paper's predictor on the padded layout: one pass over ``B * K`` sequences.

        Sequence ``b * K + j`` is ``[image b's context; its block j's mask tokens]`` under full attention,
        padded context keys masked out (``key_ok``, ``(B, 1, 1, Lc)``; None when nothing is padded, so that
        attention runs unmasked, a faster kernel).
        """
        b, k, t = target_idx.shape
        lc = context.shape[1]
        x = self.embed(context) + self.pos_embed[context_idx]  # (B, Lc, Dp)
        # The context repeated once per block, image-major (the official code stacks the copies block-major;
        # the order changes nothing but the output layout).
        x = x.unsqueeze(1).expand(-1, k, -1, -1).reshape(b * k, lc, -1)  # (B*K, Lc, Dp)
        x = torch.cat([x, self._queries(target_idx)], dim=1)  # (B*K, Lc+T, Dp)
        if key_ok is not None:
            # A block's own keys are always valid, so no query row is fully masked.
            key_ok = F.pad(key_ok, (0, t), value=True).repeat_interleave(k, dim=0)  # (B*K, 1, 1, Lc+T)
        for blk in self.blocks:
            x = blk(x, attn_mask=key_ok)
        out = self.proj(self.norm(x[:, lc:]))  # (B*K, T, De)
        return out.view(b, k, t, -1)

    def _per_block_packed(
        self, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor, packing: Packing
    ) -> torch.Tensor:
        """The paper's predictor with packed tokens: what :meth:`_per_block_padded` computes.

        Repeating a padded context K times repeats its padding too (20-37% of the context rows in
        ``reference_112`` batches), so, as in the context encoder, the token-wise layers run on the valid
        tokens only and attention alone sees the padded ``(B*K, Lc+T)`` layout (:func:`packed_block`).
        """
        b, k, t = target_idx.shape
        seqs = packing.per_block(k, t)
        x = self.embed(packing.pack(context)) + self.pos_embed[packing.pack(context_idx)]  # (Nc, Dp)
        # The packed order of Packing.per_block: each context token once per block, then every query.
        x = x.unsqueeze(1).expand(-1, k, -1).reshape(-1, x.shape[-1])  # (Nc*K, Dp)
        x = torch.cat([x, self._queries(target_idx).reshape(b * k * t, -1)])  # (Nc*K + B*K*T, Dp)
        for blk in self.blocks[:-1]:
            x = packed_block(blk, x, seqs)
        x = packed_block(self.blocks[-1], x, seqs, tail=b * k * t)  # (B*K*T, Dp): the mask tokens only
        out = self.proj(self.norm(x))  # (B*K*T, De)
        return out.view(b, k, t, -1)

    def _one_pass(
        self, x: torch.Tensor, context_valid: torch.Tensor, target_idx: torch.Tensor
    ) -> torch.Tensor:
        """The one-pass variant (not the paper's predictor): all blocks in one pass, context blind to them.

        Args:
            x: ``(B, Lc, Dp)`` embedded context tokens with their positions.
            context_valid: ``(B, Lc)`` bool, False on padding.
            target_idx: ``(B, K, T)``.
        """
        b, k, t = target_idx.shape
        lc = x.shape[1]
        queries = self._queries(target_idx).reshape(b, k * t, -1)  # (B, K*T, Dp)
        x = torch.cat([x, queries], dim=1)  # (B, Lc+K*T, Dp)
        attn_mask = predictor_attention_mask(context_valid, k, t)
        for blk in self.blocks:
            x = blk(x, attn_mask=attn_mask)
        out = self.proj(self.norm(x[:, lc:]))  # (B, K*T, De)
        return out.reshape(b, k, t, -1)


def predictor_attention_mask(context_valid: torch.Tensor, num_blocks: int, block_len: int) -> torch.Tensor:
    """Boolean ``(B, 1, L, L)`` mask (True = may attend) over ``[context; block_1; ...; block_K]``.

    The one-pass variant's mask. Context queries see valid context keys only (never mask tokens); a block's
    mask tokens see valid context keys and their own block, never another block's tokens, so each block's
    prediction is independent of the others. It is not the paper's attention, in which the context tokens of
    a block's pass also attend to that block's mask tokens.
    """
    b, lc = context_valid.shape
    n_t = num_blocks * block_len
    block_id = torch.arange(num_blocks, device=context_valid.device).repeat_interleave(block_len)
    same_block = block_id[:, None] == block_id[None, :]  # (K*T, K*T)
    mask = torch.zeros(b, lc + n_t, lc + n_t, dtype=torch.bool, device=context_valid.device)
    mask[:, :, :lc] = context_valid[:, None, :]
    mask[:, lc:, lc:] = same_block
    return mask[:, None]
