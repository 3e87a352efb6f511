"""I-JEPA networks: a timm ViT context/target encoder and a narrower ViT predictor (Assran et al., 2023).

The encoder is timm's ``VisionTransformer`` used as a library (patch embedding and blocks), with no class
token and fixed 2D sin-cos positional embeddings added before any patch is dropped, so a context encoder that
only sees the visible patches still knows where each one sits.

The predictor gets the context tokens plus one learnable mask token per target patch (carrying that patch's
positional embedding) and predicts the target encoder's embedding of every target patch. By default it is the
paper's predictor: each target block is predicted by its own pass with full attention over the valid context
tokens and that block's mask tokens, so the context tokens also attend to the block's mask tokens. As in the
official code, the K passes of a batch run as one pass over the context repeated K times along the batch.
``one_pass=True`` (config ``predictor.one_pass``) selects a faster variant, a different model: all blocks in
one pass whose attention mask lets each block's mask tokens see the context and their own block and lets
context tokens see only the context, never a mask token. The context is then attended once instead of K
times, but its token states no longer depend on the block, so with two or more predictor layers the variant's
predictions in general differ from the paper's (with one layer they are the same).

Contexts differ in length from image to image, so a batch of them is right-padded. In the context encoder and
in the paper's predictor the token-wise layers (layer norms, the qkv/projection/MLP matmuls) run on the valid
tokens only, packed into one ``(N, D)`` matrix; only attention sees the padded layout, with padded keys masked
out. See :func:`packed_block`.
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

    def to(self, device: torch.device | str) -> Packing:
        """This packing with its tensors on ``device``: built on the host from host masks, then moved, so the
        device never runs the data-dependent ``nonzero`` (a host synchronisation on CUDA)."""
        key_ok = None if self.key_ok is None else self.key_ok.to(device, non_blocking=True)
        return Packing(self.index.to(device, non_blocking=True), self.batch, self.length, key_ok)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, ...)`` -> ``(N, ...)`` valid tokens."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, ...)`` -> ``(B, L, ...)`` with zeros on padding."""
        out = x.new_zeros(self.batch * self.length, *x.shape[1:]).index_copy(0, self.index, x)
        return out.view(self.batch, self.length, *x.shape[1:])

    def per_block(self, num_blocks: int, block_len: int) -> Packing:
        """The packing of ``B * K`` sequences ``[these L tokens; block_len block tokens]``.

        Sequence ``b * K + j`` is row ``b`` followed by ``block_len`` always-valid tokens (block ``j``'s mask
        tokens in the predictor). The packed order is every valid token of this packing repeated K times
        (``(N, K)``, token-major), then all block tokens (``(B * K, T)``, sequence-major), so the packed
        matrix is built by expanding the packed context and appending the queries, with no scatter. Derived
        from this packing by arithmetic alone: no host sync.
        """
        k, t = num_blocks, block_len
        length = self.length + t
        row, pos = self.index // self.length, self.index % self.length  # (N,)
        blocks = torch.arange(k, device=self.index.device)
        context = (row[:, None] * k + blocks) * length + pos[:, None]  # (N, K)
        seqs = torch.arange(self.batch * k, device=self.index.device)[:, None]
        queries = seqs * length + self.length + torch.arange(t, device=self.index.device)  # (B*K, T)
        index = torch.cat([context.reshape(-1), queries.reshape(-1)])
        key_ok = None
        if self.key_ok is not None:
            key_ok = F.pad(self.key_ok, (0, t), value=True).repeat_interleave(k, dim=0)  # (B*K, 1, 1, L+T)
        return Packing(index, self.batch * k, length, key_ok)


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


def packed_block(blk: Block, x: torch.Tensor, packing: Packing, tail: int | None = None) -> torch.Tensor:
    """timm ``Block`` forward on packed tokens: ``(N, D)`` -> ``(N, D)``, or ``(tail, D)`` with ``tail``.

    Equals ``blk(padded, attn_mask=packing.key_ok)`` on the valid tokens. Only attention is computed on the
    padded layout (padded queries are computed, then dropped); everything else costs N tokens, not B * L.

    ``tail`` (the predictor's last layer, whose context rows are never read): compute the outputs of the last
    ``tail = B * T`` packed rows only, which must be the last ``T`` tokens of every sequence, sequence-major
    (the order of :meth:`Packing.per_block`). The other rows then give keys and values and nothing else (no
    query projection, attention row, output projection or MLP); the result equals the full block's last
    ``tail`` rows.
    """
    a = blk.attn
    b, length, dim = packing.batch, packing.length, x.shape[-1]
    h = blk.norm1(x)
    if tail is None:
        qkv = packing.unpack(a.qkv(h))  # (B, L, 3D)
        q, k, v = qkv.view(b, length, 3, a.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, L, d)
    else:
        kv = packing.unpack(F.linear(h, a.qkv.weight[dim:], a.qkv.bias[dim:]))  # (B, L, 2D)
        k, v = kv.view(b, length, 2, a.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, L, d)
        q = F.linear(h[-tail:], a.qkv.weight[:dim], a.qkv.bias[:dim])  # (B*T, D)
        q = q.view(b, tail // b, a.num_heads, -1).transpose(1, 2)  # (B, H, T, d)
        x = x[-tail:]
    q, k = a.q_norm(q), a.k_norm(k)
    drop = a.attn_drop.p if a.training else 0.0
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=packing.key_ok, dropout_p=drop).transpose(
        1, 2
    )  # (B, L or T, H, d)
    attended = (
        packing.pack(attended.flatten(2)) if tail is None else attended.reshape(tail, dim)
    )  # (N|tail, D)
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
        self.apply(_init_weights)
        _rescale_blocks(self.blocks)

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
        if packing.key_ok is not None and all(packable(blk) for blk in self.blocks):
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
            self.encoder.grid, m.embed_dim, p.embed_dim, p.depth, p.num_heads, m.mlp_ratio, p.one_pass
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
        packing: Packing | None = None,
    ) -> torch.Tensor:
        """The I-JEPA objective on one batch.

        Targets are the target encoder's layer-normed embeddings of the full image at the target patches; the
        loss is their L2 (mean squared error) or smooth-L1 distance to the predictions. ``packing`` is
        ``Packing.of(context_valid)`` built by the caller on the host (the trainer does); without it, it is
        built here, which synchronises a CUDA device with the host once.
        """
        b, k, t = target_idx.shape
        with torch.no_grad():
            h = self.target(images)
            h = F.layer_norm(h, (h.shape[-1],))
            targets = _gather_tokens(h, target_idx.reshape(b, k * t)).reshape(b, k, t, -1)
        # Computed outside the compiled encoder and predictor: where the valid context tokens are, and whether
        # any context is padded at all (without padding, attention runs unmasked, a faster kernel).
        packing = Packing.of(context_valid) if packing is None else packing
        z = self.encoder(images, context_idx, packing=packing)
        pred = self.predictor(z, context_idx, context_valid, target_idx, packing)
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


def build_encoder(cfg: Config, in_chans: int) -> JepaEncoder:
    """The context (and target) encoder ``cfg`` describes; the one place an encoder is built."""
    m = cfg.model
    return JepaEncoder(
        cfg.data.image_size,
        m.patch_size,
        in_chans,
        m.embed_dim,
        m.depth,
        m.num_heads,
        m.mlp_ratio,
        m.drop_path,
    )


def build_ijepa(cfg: Config, in_chans: int) -> IJepa:
    """The I-JEPA model ``cfg`` describes, freshly initialised; the one place a model is built."""
    return IJepa(cfg, in_chans)
