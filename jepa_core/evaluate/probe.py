"""Linear probes on frozen features: a multinomial logistic regression fitted full-batch with L-BFGS.

The classic frozen-feature protocol used to evaluate I-JEPA (Assran et al., 2023), made cheap enough to run
every few epochs; and the same probe on flattened raw pixels, the baseline a learned encoder has to beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from jepa_core.evaluate.features import Transform, extract_features
from jepa_core.evaluate.inputs import check_split, check_train_test

# Standard deviations below this are treated as "constant feature" when standardizing: dividing by them
# would blow up any test-time deviation for a direction the probe never saw vary.
_MIN_STD = 1e-6


@dataclass(frozen=True)
class LinearProbe:
    """A fitted multinomial logistic-regression probe on frozen features (see :func:`linear_probe`).

    Fitting once and scoring several sets (validation, then test) gives each the very same probe.

    Attributes:
        mean: Train-feature mean ``[1, D]`` used to standardize.
        std: Train-feature std ``[1, D]`` (constant dimensions set to 1).
        weight: ``[D, C]``.
        bias: ``[C]``.
    """

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def fit(
        cls,
        train_x: torch.Tensor,
        train_y: torch.Tensor,
        *,
        num_classes: int,
        weight_decay: float = 1e-4,
        max_iter: int = 1000,
    ) -> LinearProbe:
        """Fit the probe full-batch with L-BFGS (arguments as for :func:`linear_probe`)."""
        check_split(train_x, train_y, "train")
        device = train_x.device
        # Leave inference mode (and no_grad) so the probe's own parameters get gradients; the standardized
        # copies made below are ordinary tensors even if the inputs were created under inference_mode.
        with torch.inference_mode(False), torch.enable_grad():
            xtr = train_x.detach().to(device, torch.float32)
            ytr = train_y.detach().to(device, torch.long).clone()
            # Standardization makes one weight decay / iteration budget behave the same across encoders whose
            # feature scales differ by orders of magnitude; it also conditions L-BFGS well.
            mean = xtr.mean(dim=0, keepdim=True)
            std = xtr.std(dim=0, correction=0, keepdim=True)
            std = torch.where(std < _MIN_STD, torch.ones_like(std), std)
            xtr = (xtr - mean) / std

            weight = torch.zeros(xtr.shape[1], num_classes, device=device, requires_grad=True)
            bias = torch.zeros(num_classes, device=device, requires_grad=True)
            opt = torch.optim.LBFGS(
                [weight, bias], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
            )

            def closure() -> torch.Tensor:
                opt.zero_grad(set_to_none=False)
                loss = F.cross_entropy(torch.addmm(bias, xtr, weight), ytr)
                loss = loss + 0.5 * weight_decay * weight.pow(2).sum()
                loss.backward()
                return loss

            # One step() runs up to max_iter L-BFGS iterations (full batch), stopping early on convergence.
            opt.step(closure)
        return cls(mean=mean, std=std, weight=weight.detach(), bias=bias.detach())

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy in ``[0, 1]`` of the probe on features ``x [M, D]`` with labels ``y [M]``."""
        check_split(x, y, "scored")
        if x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"feature dims differ: train {self.weight.shape[0]} vs scored {x.shape[1]}")
        z = (x.detach().to(self.weight.device, torch.float32) - self.mean) / self.std
        pred = torch.addmm(self.bias, z, self.weight).argmax(dim=1)
        return (pred == y.to(pred.device, torch.long)).float().mean().item()


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    num_classes: int | None = None,
    weight_decay: float = 1e-4,
    max_iter: int = 1000,
) -> float:
    """Test accuracy of a multinomial logistic-regression probe on frozen features.

    The probe is the frozen-feature protocol used to evaluate I-JEPA (Assran et al., 2023), shrunk to a
    cheap full-batch fit: features are standardized with the *train* mean/std, the weights start at zero
    (so the result is deterministic), and the L2-regularized cross-entropy is minimized with
    ``torch.optim.LBFGS`` using a strong-Wolfe line search. Everything runs in float32 on the features'
    device; gradients are enabled locally, so it is safe to call under ``torch.no_grad()`` or
    ``torch.inference_mode()``.

    Args:
        train_x: Train features ``[N, D]``.
        train_y: Train labels ``[N]`` (integers in ``[0, num_classes)``).
        test_x: Test features ``[M, D]``.
        test_y: Test labels ``[M]``.
        num_classes: Number of classes; inferred from the labels if None.
        weight_decay: L2 penalty ``weight_decay / 2 * ||W||^2`` on the weights (not the bias).
        max_iter: Maximum L-BFGS iterations.

    Returns:
        Test accuracy in ``[0, 1]``.
    """
    n_cls = check_train_test(train_x, train_y, test_x, test_y, num_classes)
    probe = LinearProbe.fit(train_x, train_y, num_classes=n_cls, weight_decay=weight_decay, max_iter=max_iter)
    return probe.accuracy(test_x, test_y)


def _flatten(batch: torch.Tensor) -> torch.Tensor:
    """Flatten every sample of a batch to a vector (the identity 'encoder' for raw pixels)."""
    return batch.reshape(batch.shape[0], -1)


def raw_pixel_probe(
    train_images: torch.Tensor,
    train_y: torch.Tensor,
    test_images: torch.Tensor,
    test_y: torch.Tensor,
    transform: Transform | None = None,
    *,
    num_classes: int | None = None,
    weight_decay: float = 1e-4,
    max_iter: int = 1000,
) -> float:
    """Linear-probe accuracy on flattened raw pixels: the baseline a learned encoder must beat.

    A self-supervised encoder whose frozen features probe worse than the pixels themselves has learned
    nothing linearly useful; I-JEPA (Assran et al., 2023) representations should clear this bar easily.

    Args:
        train_images: Train images ``[N, ...]`` of any dtype.
        train_y: Train labels ``[N]``.
        test_images: Test images ``[M, ...]``.
        test_y: Test labels ``[M]``.
        transform: Optional per-batch transform (e.g. uint8 -> normalized float) applied before flattening.
        num_classes: Number of classes; inferred from the labels if None.
        weight_decay: See :func:`linear_probe`.
        max_iter: See :func:`linear_probe`.

    Returns:
        Test accuracy in ``[0, 1]``.
    """
    train_x = extract_features(_flatten, train_images, transform=transform)
    test_x = extract_features(_flatten, test_images, transform=transform)
    return linear_probe(
        train_x,
        train_y,
        test_x,
        test_y,
        num_classes=num_classes,
        weight_decay=weight_decay,
        max_iter=max_iter,
    )
