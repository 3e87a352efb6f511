"""A naive I-JEPA training step written in this project: the benchmark baseline of the fast path.

It implements the paper's step (Assran et al., 2023) the straightforward way: mask indices are handled per
image in Python loops, attention is written out as ``softmax(q @ k^T * scale) @ v`` with no fused kernel, and
the predictor runs on the context repeated ``K`` times along the batch, block-major (row ``k * B + b``), each
block's sequence under full attention. That is the layout of the official code (facebookresearch/ijepa's
``VisionTransformerPredictor`` and ``apply_masks``), but this module is neither that code nor a copy of it.
It also differs from it where this project's mask sampler does: each image keeps its own context
(right-padded, with an explicit key mask) instead of every context being truncated to the batch's shortest.

It reads the very parameter tensors of an :class:`~jepa_core.models.IJepa` instance (encoder, predictor and
EMA target), so for the same model, batch and masks it computes the same loss and gradients as ``IJepa.loss``
with the paper's predictor (``predictor.one_pass: false``, the default), up to floating-point rounding:

* padded context entries are never attended (each image's valid context is gathered by a loop and the batch
  is right-padded with an explicit key mask; the padded rows never reach the loss);
* in the predictor, the sequence of block ``k`` is ``[valid context; block k's mask tokens]`` under full
  attention: context tokens attend to valid context tokens and to that block's mask tokens, and mask tokens
  attend to everything valid in their sequence.

It does not compute the one-pass variant (``predictor.one_pass: true``), a different model. Only the layout
differs from the default fast path, so the ratio of the two measures what the layout (packed tokens, fused
attention, vectorised gathers) buys, not a change of model.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from jepa_core.masks import MaskBatch
from jepa_core.models import IJepa, JepaEncoder, JepaPredictor
from jepa_core.step import train_step


def _check_plain_block(blk: Block) -> None:
    """Fails loudly if a block uses a feature the explicit forward below does not implement."""
    plain = (
        isinstance(blk.ls1, nn.Identity)
        and isinstance(blk.ls2, nn.Identity)
        and isinstance(blk.drop_path1, nn.Identity)
        and isinstance(blk.drop_path2, nn.Identity)
        and isinstance(blk.attn.q_norm, nn.Identity)
        and isinstance(blk.attn.k_norm, nn.Identity)
        and isinstance(blk.attn.norm, nn.Identity)
        and getattr(blk.attn, "gate", None) is None
        and isinstance(blk.mlp.norm, nn.Identity)
        and blk.attn.attn_drop.p == 0.0
    )
    if not plain:
        raise ValueError(
            "the naive step supports plain pre-norm ViT blocks only "
            "(no layer scale, stochastic depth, qk-norm, gating or attention dropout)"
        )


def _layer_norm(x: torch.Tensor, ln: nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def explicit_attention(x: torch.Tensor, blk: Block, allowed: torch.Tensor | None) -> torch.Tensor:
    """Multi-head self-attention of one block written out, with no fused kernel.

    Args:
        x: ``(B, L, D)`` normed tokens.
        blk: The timm block whose ``attn.qkv`` and ``attn.proj`` weights are used.
        allowed: ``(B, 1, L, L)`` or ``(B, 1, 1, L)`` bool, True where a query may attend a key; None for all.

    Returns:
        ``(B, L, D)`` attention output after the output projection.
    """
    attn = blk.attn
    b, n, d = x.shape
    h = attn.num_heads
    qkv = F.linear(x, attn.qkv.weight, attn.qkv.bias).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]  # (B, h, L, hd)
    scores = (q @ k.transpose(-2, -1)) * attn.scale  # (B, h, L, L)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    out = scores.softmax(dim=-1) @ v  # (B, h, L, hd)
    out = out.transpose(1, 2).reshape(b, n, d)
    return F.linear(out, attn.proj.weight, attn.proj.bias)


def explicit_block(x: torch.Tensor, blk: Block, allowed: torch.Tensor | None) -> torch.Tensor:
    """One pre-norm transformer block: attention and MLP residual branches."""
    x = x + explicit_attention(_layer_norm(x, blk.norm1), blk, allowed)
    hidden = blk.mlp.act(F.linear(_layer_norm(x, blk.norm2), blk.mlp.fc1.weight, blk.mlp.fc1.bias))
    return x + F.linear(hidden, blk.mlp.fc2.weight, blk.mlp.fc2.bias)


def per_image_indices(masks: MaskBatch) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Unpacks a :class:`MaskBatch` into per-image index lists, one tensor per image and block.

    Returns:
        ``(contexts, targets)``: ``contexts[b]`` holds image ``b``'s valid context indices (no padding);
        ``targets[b][k]`` its ``k``-th target block's indices.
    """
    contexts, targets = [], []
    for idx, valid, blocks in zip(masks.context_idx, masks.context_valid, masks.target_idx, strict=True):
        contexts.append(idx[valid])
        targets.append(list(blocks.unbind(0)))
    return contexts, targets


def gather_per_image(x: torch.Tensor, indices: list[torch.Tensor]) -> list[torch.Tensor]:
    """``x`` (B, N, D), ``indices[b]`` (L_b,) -> per-image ``(L_b, D)`` tokens, one image at a time."""
    return [x[b].index_select(0, idx) for b, idx in enumerate(indices)]


def encode_context(encoder: JepaEncoder, images: torch.Tensor, contexts: list[torch.Tensor]) -> torch.Tensor:
    """Context encoder on each image's visible patches; ``(B, Lmax, D)`` normed tokens, right-padded."""
    x = encoder.vit.patch_embed(images) + encoder.pos_embed  # (B, N, D)
    x = pad_sequence(gather_per_image(x, contexts), batch_first=True)  # (B, Lmax, D)
    lengths = torch.tensor([len(c) for c in contexts], device=x.device)
    key_ok = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, Lmax)
    allowed = key_ok[:, None, None, :]
    for blk in encoder.vit.blocks:
        x = explicit_block(x, blk, allowed)
    return _layer_norm(x, encoder.vit.norm)


def encode_full(encoder: JepaEncoder, images: torch.Tensor) -> torch.Tensor:
    """Target encoder on every patch; ``(B, N, D)`` normed tokens."""
    x = encoder.vit.patch_embed(images) + encoder.pos_embed
    for blk in encoder.vit.blocks:
        x = explicit_block(x, blk, None)
    return _layer_norm(x, encoder.vit.norm)


def predict_per_block(
    predictor: JepaPredictor,
    z: torch.Tensor,
    contexts: list[torch.Tensor],
    targets: list[list[torch.Tensor]],
) -> torch.Tensor:
    """The paper's predictor: one full-attention pass per block on the context repeated ``K`` times.

    Args:
        predictor: Supplies the weights (embed, mask token, positions, blocks, norm, proj).
        z: ``(B, Lmax, De)`` right-padded context tokens.
        contexts: Per-image valid context indices (their lengths define the padding).
        targets: ``targets[b][k]`` patch indices of image ``b``'s block ``k`` (``T`` each).

    Returns:
        ``(K * B, T, De)`` predictions, block-major (row ``k * B + b``), as the official code lays them out.
    """
    b, lmax, _ = z.shape
    k = len(targets[0])
    pos = predictor.pos_embed
    ctx_pos = pad_sequence([pos.index_select(0, c) for c in contexts], batch_first=True)
    x = F.linear(z, predictor.embed.weight, predictor.embed.bias) + ctx_pos  # (B, Lmax, Dp)
    x = x.repeat(k, 1, 1)  # (K*B, Lmax, Dp): the context copied once per block
    queries = torch.cat(
        [torch.stack([pos.index_select(0, targets[i][j]) for i in range(b)]) for j in range(k)]
    )  # (K*B, T, Dp)
    x = torch.cat([x, predictor.mask_token + queries], dim=1)
    t = queries.shape[1]
    lengths = torch.tensor([len(c) for c in contexts], device=z.device).repeat(k)
    key_pos = torch.arange(lmax + t, device=z.device)
    # Only padded context keys are masked: every query, context or mask token, attends to the valid context
    # and to this block's mask tokens, so the context states of one block's pass depend on that block.
    key_ok = (key_pos[None, :] < lengths[:, None]) | (key_pos[None, :] >= lmax)  # (K*B, L)
    allowed = key_ok[:, None, None, :]  # (K*B, 1, 1, L)
    for blk in predictor.blocks:
        x = explicit_block(x, blk, allowed)
    out = _layer_norm(x[:, lmax:], predictor.norm)
    return F.linear(out, predictor.proj.weight, predictor.proj.bias)


def naive_loss(model: IJepa, images: torch.Tensor, masks: MaskBatch, kind: str = "l2") -> torch.Tensor:
    """The I-JEPA objective computed the naive way; equals ``IJepa.loss`` with the paper's predictor.

    Args:
        model: Supplies every weight (context encoder, predictor, EMA target).
        images: ``(B, C, H, W)`` float.
        masks: Context and target indices of the batch.
        kind: ``"l2"`` (mean squared error) or ``"smooth_l1"``.

    Returns:
        The scalar loss, averaged over every predicted element.
    """
    for blk in (*model.encoder.vit.blocks, *model.predictor.blocks, *model.target.vit.blocks):
        _check_plain_block(blk)
    contexts, targets = per_image_indices(masks)
    k = len(targets[0])
    with torch.no_grad():
        h = encode_full(model.target, images)
        h = F.layer_norm(h, (h.shape[-1],))
        # apply_masks: one gather per block, blocks concatenated along the batch (block-major).
        h = torch.cat([torch.stack(gather_per_image(h, [tb[j] for tb in targets])) for j in range(k)])
    z = encode_context(model.encoder, images, contexts)
    pred = predict_per_block(model.predictor, z, contexts, targets)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred.float(), h.float())
    if kind != "l2":
        raise ValueError(f"loss kind must be l2 or smooth_l1, got {kind!r}")
    return F.mse_loss(pred.float(), h.float())


# ``jepa_core.step.train_step`` with :func:`naive_loss` in place of ``IJepa.loss``. The optimiser update
# (learning rate and decay from the schedules, AdamW, optional clipping, EMA of the target) is the same, so a
# timing difference between the two steps is the loss computation's alone.
naive_train_step = functools.partial(train_step, loss_fn=naive_loss)
