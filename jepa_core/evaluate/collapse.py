"""Label-free diagnostics of the embeddings: RankMe, the feature std, and the collapse warning.

RankMe (Garrido et al., 2023, "RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised
Representations by Their Rank") is the effective rank of the embeddings; the per-dimension std of
L2-normalized features goes to 0 as every sample maps to one direction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rankme(x: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe effective rank of an embedding matrix (Garrido et al., 2023).

    ``RankMe = exp(-sum_k p_k log p_k)`` with ``p_k = sigma_k / ||sigma||_1 + eps`` and ``sigma`` the
    singular values of the ``[N, D]`` embedding matrix. As in the paper the embeddings are *not* centered.
    The value lies in ``[1, min(N, D)]`` (up to the tiny ``eps`` terms) and tracks downstream performance
    without labels; a collapsing encoder drives it towards 1.

    Args:
        x: Embeddings ``[N, D]``.
        eps: Small constant added to each normalized singular value (the paper's epsilon).

    Returns:
        The RankMe value. An all-zero matrix gives ~1 (all mass on the eps terms).
    """
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"rankme needs a non-empty [N, D] matrix, got shape {tuple(x.shape)}")
    # float64 SVD: cheap for [N, D] with D in the hundreds, and keeps tiny singular values (which the
    # entropy is sensitive to near collapse) from drowning in float32 round-off.
    sigma = torch.linalg.svdvals(x.detach().to(torch.float64))
    p = sigma / sigma.sum().clamp_min(torch.finfo(torch.float64).tiny) + eps
    return math.exp(float(-(p * p.log()).sum().item()))


def feature_std(x: torch.Tensor) -> float:
    """Mean over dimensions of the per-dimension std of L2-normalized features.

    A label-free collapse indicator: if every sample maps to the same direction it is 0, while for
    isotropic features on the unit sphere each coordinate has std ``~ 1 / sqrt(D)``.

    Args:
        x: Features ``[N, D]``.

    Returns:
        The mean per-dimension (population) std of ``x / ||x||``.
    """
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"feature_std needs a non-empty [N, D] matrix, got shape {tuple(x.shape)}")
    z = F.normalize(x.detach().to(torch.float32), dim=1)
    # Population std (correction=0) so a single sample reads as 0 rather than NaN.
    return float(z.std(dim=0, correction=0).mean().item())


def collapse_warning(rankme_value: float, dim: int, threshold: float = 0.05) -> str | None:
    """One-line warning when RankMe says the representation is collapsing.

    Args:
        rankme_value: Output of :func:`rankme`.
        dim: The embedding dimension (the largest achievable rank when ``N >= D``).
        threshold: Warn when ``rankme_value < threshold * dim``.

    Returns:
        A warning string, or None if the effective rank looks healthy. A non-finite value (NaN features)
        also warns.
    """
    if not math.isfinite(rankme_value):
        return f"representation collapse check: RankMe is {rankme_value} (non-finite features?)"
    if rankme_value < threshold * dim:
        return (
            f"representation collapse suspected: RankMe {rankme_value:.2f} < {threshold:g} x dim "
            f"({threshold * dim:.1f} of {dim})"
        )
    return None
