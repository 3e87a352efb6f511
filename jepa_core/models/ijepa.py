"""One I-JEPA model: context encoder, predictor and EMA target encoder; the objective and the EMA step."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from timm.layers import Attention
from torch import nn

from jepa_core.models.encoder import JepaEncoder
from jepa_core.models.packing import Packing, gather_tokens
from jepa_core.models.predictor import JepaPredictor


class IJepa(nn.Module):
    """Context encoder, predictor and EMA target encoder of one I-JEPA model (Assran et al., 2023).

    The target encoder starts as a copy of ``encoder`` and is never trained by gradients, only by
    :meth:`update_target`. The state dict holds ``encoder.*``, ``predictor.*`` and ``target.*``; checkpoints
    store the three modules' state dicts separately. :func:`jepa_core.models.build_ijepa` builds one from a
    config, with I-JEPA's initialisation of the encoder's blocks.

    Args:
        encoder: The context encoder, initialised; the target encoder is a deep copy of it.
        predictor: A predictor over ``encoder``'s patch grid that reads and predicts tokens of
            ``encoder``'s width.

    Raises:
        ValueError: The predictor's token width or patch grid does not match the encoder's.
    """

    def __init__(self, encoder: JepaEncoder, predictor: JepaPredictor) -> None:
        super().__init__()
        widths = (predictor.embed.in_features, predictor.proj.out_features)
        if widths != (encoder.embed_dim, encoder.embed_dim):
            raise ValueError(
                f"the predictor reads and predicts tokens of widths {widths}, "
                f"the encoder's are {encoder.embed_dim}"
            )
        if predictor.pos_embed.shape[0] != encoder.num_patches:
            raise ValueError(
                f"the predictor has positions for {predictor.pos_embed.shape[0]} patches, "
                f"the encoder's grid has {encoder.num_patches}"
            )
        self.encoder = encoder
        self.predictor = predictor
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

    def use_fused_attention(self, fused: bool) -> None:
        """Attention through ``F.scaled_dot_product_attention`` (``fused``) or as explicit matmuls and a
        softmax, in every block of the three networks (timm's ``Attention.fused_attn``, which the packed
        blocks follow too). Same math; which is faster depends on device and dtype
        (:func:`jepa_core.devices.fused_attention`)."""
        for module in self.modules():
            if isinstance(module, Attention):
                module.fused_attn = fused

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
            targets = gather_tokens(h, target_idx.reshape(b, k * t)).reshape(b, k, t, -1)
        # Computed outside the compiled encoder and predictor: where the valid context tokens are, and whether
        # any context is padded at all (without padding, attention runs unmasked, a faster kernel).
        packing = Packing.of(context_valid) if packing is None else packing
        z = self.encoder(images, context_idx, packing=packing)
        pred = self.predictor(z, context_idx, context_valid, target_idx, packing)
        if kind == "smooth_l1":
            return F.smooth_l1_loss(pred.float(), targets.float())
        return F.mse_loss(pred.float(), targets.float())
