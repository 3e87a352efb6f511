"""Right-padded token batches as packed ``(N, D)`` matrices of their valid tokens.

Contexts differ in length from image to image, so a batch of them is right-padded. In the context encoder and
in the paper's predictor the token-wise layers (layer norms, the qkv/projection/MLP matmuls) run on the valid
tokens only, packed into one ``(N, D)`` matrix; only attention sees the padded layout, with padded keys masked
out (:func:`packed_block`). :class:`Packing` records where the valid tokens sit.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from timm.models.vision_transformer import Block


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x`` (B, N, D), ``idx`` (B, L) -> (B, L, D)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Packing(NamedTuple):
    """Where the valid tokens of a right-padded ``(B, L)`` batch sit.

    Attributes:
        index: ``(N,)`` flat positions in ``B * L`` of the valid tokens, in order; None for the padded
            layout (:meth:`padded`), in which every layer runs on all ``B * L`` tokens.
        batch: B.
        length: L.
        key_ok: ``(B, 1, 1, L)`` bool attention mask (False on padded keys); None when nothing is padded.
    """

    index: torch.Tensor | None
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

    @classmethod
    def padded(cls, valid: torch.Tensor) -> Packing:
        """The padded layout of a ``(B, L)`` validity mask: nothing packed, padded keys masked out.

        Every shape then depends on ``B`` and ``L`` only, never on how many tokens are valid, which is what
        ``torch.compile`` and CUDA graphs need (see :func:`jepa_core.step.device_masks`).
        """
        b, length = valid.shape
        return cls(None, b, length, valid[:, None, None, :])

    @property
    def packed(self) -> bool:
        """Whether the token-wise layers run on the valid tokens only (False: the padded layout)."""
        return self.index is not None and self.key_ok is not None

    def to(self, device: torch.device | str) -> Packing:
        """This packing with its tensors on ``device``: built on the host from host masks, then moved, so the
        device never runs the data-dependent ``nonzero`` (a host synchronisation on CUDA)."""
        key_ok = None if self.key_ok is None else self.key_ok.to(device, non_blocking=True)
        index = None if self.index is None else self.index.to(device, non_blocking=True)
        return Packing(index, self.batch, self.length, key_ok)

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
    if a.fused_attn:
        drop = a.attn_drop.p if a.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=packing.key_ok, dropout_p=drop)
    else:  # explicit matmuls and softmax, as timm's Attention computes when not fused
        scores = (q * a.scale) @ k.transpose(-2, -1)
        if packing.key_ok is not None:
            scores = scores.masked_fill(~packing.key_ok, float("-inf"))
        attended = a.attn_drop(scores.softmax(dim=-1)) @ v
    attended = attended.transpose(1, 2)  # (B, L or T, H, d)
    attended = (
        packing.pack(attended.flatten(2)) if tail is None else attended.reshape(tail, dim)
    )  # (N|tail, D)
    x = x + blk.drop_path1(blk.ls1(a.proj_drop(a.proj(a.norm(attended)))))
    return x + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(x))))
