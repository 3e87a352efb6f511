"""Evaluation of frozen self-supervised features.

I-JEPA (Assran et al., 2023, "Self-Supervised Learning from Images with a Joint-Embedding Predictive
Architecture") is judged by how useful its *frozen* target-encoder features are downstream. This module
provides the cheap, device-agnostic measurements the sweep lab reports after (or during) a run:

* a linear probe: multinomial logistic regression on standardized frozen features, fitted full-batch with
  L-BFGS (the classic frozen-feature protocol, made cheap enough to run every few epochs);
* a weighted k-nearest-neighbour classifier on cosine similarity (Wu et al., 2018, "Unsupervised Feature
  Learning via Non-Parametric Instance Discrimination"; the same protocol DINO, Caron et al. 2021, uses);
* RankMe (Garrido et al., 2023, "RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised
  Representations by Their Rank"), a label-free effective rank of the embeddings;
* the per-dimension std of L2-normalized features, a label-free collapse indicator;
* a raw-pixel linear probe, the baseline a learned encoder has to beat.

Everything is plain torch, runs on whatever device the features live on, and needs no gradients into the
encoder.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EvalResult",
    "LinearProbe",
    "collapse_warning",
    "evaluate_features",
    "extract_features",
    "extract_features_loader",
    "feature_std",
    "knn_accuracy",
    "linear_probe",
    "rankme",
    "raw_pixel_probe",
]

Encoder = Callable[[torch.Tensor], torch.Tensor]
Transform = Callable[[torch.Tensor], torch.Tensor]

# Standard deviations below this are treated as "constant feature" when standardizing: dividing by them
# would blow up any test-time deviation for a direction the probe never saw vary.
_MIN_STD = 1e-6


# ---------------------------------------------------------------------------------------------------------
# Feature extraction
# ---------------------------------------------------------------------------------------------------------


class _EvalMode:
    """Temporarily put an ``nn.Module`` encoder in eval mode, restoring each submodule's own flag after.

    Frozen-feature evaluation must not use dropout / drop-path or update norm statistics. Restoring
    per-submodule flags (rather than calling ``train(True)``) keeps deliberately frozen submodules frozen.
    """

    def __init__(self, encode: object) -> None:
        self._modules: list[tuple[nn.Module, bool]] = []
        if isinstance(encode, nn.Module):
            self._modules = [(m, m.training) for m in encode.modules()]
            self._root: nn.Module | None = encode
        else:
            self._root = None

    def __enter__(self) -> None:
        if self._root is not None:
            self._root.eval()

    def __exit__(self, *exc: object) -> None:
        for module, was_training in self._modules:
            module.training = was_training


def _encode_batch(encode: Encoder, batch: torch.Tensor, transform: Transform | None) -> torch.Tensor:
    """Apply ``transform`` then ``encode`` and check the result is a 2-D ``[b, D]`` feature batch."""
    if transform is not None:
        batch = transform(batch)
    feats = encode(batch)
    if feats.dim() != 2 or feats.shape[0] != batch.shape[0]:
        raise ValueError(f"encode must map a batch of {batch.shape[0]} to [b, D], got {tuple(feats.shape)}")
    # float32 regardless of autocast: probes and SVDs downstream are not reliable in half precision.
    return feats.float()


@torch.no_grad()
def extract_features(
    encode: Encoder,
    images: torch.Tensor,
    *,
    batch_size: int = 512,
    transform: Transform | None = None,
) -> torch.Tensor:
    """Encode a tensor of images in batches, without gradients.

    Args:
        encode: Maps a (transformed) batch ``[b, ...]`` to features ``[b, D]``. If it is an ``nn.Module`` it
            is switched to eval mode for the duration and its train/eval flags are restored afterwards.
        images: Tensor ``[N, ...]`` of any dtype (e.g. uint8 images kept compact in memory).
        batch_size: Number of images encoded at once.
        transform: Optional per-batch transform applied before ``encode`` (e.g. uint8 -> normalized float);
            applied per batch so the whole data set is never materialized as float.

    Returns:
        float32 features ``[N, D]`` on ``images.device``.

    Raises:
        ValueError: If ``images`` is empty or ``batch_size`` is not positive.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if images.shape[0] == 0:
        raise ValueError("cannot extract features from an empty tensor (feature dim unknown)")
    chunks: list[torch.Tensor] = []
    with _EvalMode(encode):
        for start in range(0, images.shape[0], batch_size):
            feats = _encode_batch(encode, images[start : start + batch_size], transform)
            chunks.append(feats.to(images.device))
    return torch.cat(chunks)


@torch.no_grad()
def extract_features_loader(
    encode: Encoder,
    loader: Iterable[Sequence[torch.Tensor]],
    *,
    transform: Transform | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode every ``(x, y)`` batch of a loader, without gradients.

    Args:
        encode: Maps a (transformed) batch to features ``[b, D]``; an ``nn.Module`` is put in eval mode for
            the duration (flags restored afterwards).
        loader: Any iterable of ``(x, y)`` pairs (a ``DataLoader``, a list of tuples, a generator).
        transform: Optional per-batch transform applied to ``x`` before ``encode``.
        device: If given, each ``x`` is moved there before ``transform``/``encode`` and the results are
            returned there; otherwise results live on the device of the first input batch.

    Returns:
        ``(features, labels)``: float32 ``[N, D]`` and int64 ``[N]`` on the same device.

    Raises:
        ValueError: If the loader yields nothing or a batch is not an ``(x, y)`` pair.
    """
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    out_device = torch.device(device) if device is not None else None
    with _EvalMode(encode):
        for batch in loader:
            if len(batch) != 2:
                raise ValueError(f"loader must yield (x, y) pairs, got a batch of length {len(batch)}")
            x, y = batch
            if out_device is None:
                out_device = x.device
            x = x.to(out_device, non_blocking=True)
            feats.append(_encode_batch(encode, x, transform).to(out_device))
            labels.append(torch.as_tensor(y).to(out_device, dtype=torch.long).reshape(-1))
    if not feats:
        raise ValueError("loader yielded no batches")
    return torch.cat(feats), torch.cat(labels)


# ---------------------------------------------------------------------------------------------------------
# Supervised probes on frozen features
# ---------------------------------------------------------------------------------------------------------


def _check_split(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    """Validate a ``[N, D]`` feature matrix and its ``[N]`` labels."""
    if x.dim() != 2:
        raise ValueError(f"{name} features must be 2-D [N, D], got shape {tuple(x.shape)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name} labels must be 1-D with {x.shape[0]} entries, got shape {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} split is empty")


def _infer_num_classes(num_classes: int | None, *labels: torch.Tensor) -> int:
    """Return ``num_classes`` or, if None, one more than the largest label seen in any split."""
    seen = max(int(y.max().item()) for y in labels) + 1
    if num_classes is None:
        return seen
    if seen > num_classes:
        raise ValueError(f"label {seen - 1} out of range for num_classes={num_classes}")
    return num_classes


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
        _check_split(train_x, train_y, "train")
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
        _check_split(x, y, "scored")
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
    _check_split(train_x, train_y, "train")
    _check_split(test_x, test_y, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"feature dims differ: train {train_x.shape[1]} vs test {test_x.shape[1]}")
    n_cls = _infer_num_classes(num_classes, train_y, test_y)
    probe = LinearProbe.fit(train_x, train_y, num_classes=n_cls, weight_decay=weight_decay, max_iter=max_iter)
    return probe.accuracy(test_x, test_y)


def knn_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk: int = 1024,
) -> float:
    """Test accuracy of a weighted k-nearest-neighbour classifier on cosine similarity.

    Follows the non-parametric protocol of Wu et al. (2018), as popularised for SSL evaluation by DINO
    (Caron et al., 2021): features are L2-normalized, each test point takes its ``k`` most similar train
    points, and each neighbour votes for its label with weight ``exp(sim / temperature)``.

    Args:
        train_x: Train features ``[N, D]``.
        train_y: Train labels ``[N]``.
        test_x: Test features ``[M, D]``.
        test_y: Test labels ``[M]``.
        k: Number of neighbours; clamped to the train-set size.
        temperature: Softmax-style temperature of the vote weights.
        num_classes: Number of classes; inferred from the labels if None.
        chunk: Test points processed at once (bounds the ``chunk x N`` similarity matrix in memory).

    Returns:
        Test accuracy in ``[0, 1]``.
    """
    _check_split(train_x, train_y, "train")
    _check_split(test_x, test_y, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"feature dims differ: train {train_x.shape[1]} vs test {test_x.shape[1]}")
    if k <= 0 or chunk <= 0 or temperature <= 0:
        raise ValueError(f"k, chunk and temperature must be positive, got {k}, {chunk}, {temperature}")
    n_cls = _infer_num_classes(num_classes, train_y, test_y)
    device = train_x.device
    k_eff = min(k, train_x.shape[0])

    with torch.no_grad():
        bank = F.normalize(train_x.to(device, torch.float32), dim=1)
        bank_y = train_y.to(device, torch.long)
        queries = F.normalize(test_x.to(device, torch.float32), dim=1)
        targets = test_y.to(device, torch.long)
        correct = 0
        for start in range(0, queries.shape[0], chunk):
            sim = queries[start : start + chunk] @ bank.T
            top_sim, top_idx = sim.topk(k_eff, dim=1)
            # Subtracting each row's best similarity rescales that row's votes by a constant (same argmax)
            # but keeps exp() finite for small temperatures (1 / 0.01 = 100 would overflow float32).
            weights = ((top_sim - top_sim[:, :1]) / temperature).exp()
            votes = torch.zeros(sim.shape[0], n_cls, device=device)
            votes.scatter_add_(1, bank_y[top_idx], weights)
            correct += int((votes.argmax(dim=1) == targets[start : start + chunk]).sum().item())
    return correct / queries.shape[0]


# ---------------------------------------------------------------------------------------------------------
# Label-free diagnostics
# ---------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------
# Baseline and combined evaluation
# ---------------------------------------------------------------------------------------------------------


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


@dataclass
class EvalResult:
    """Frozen-feature evaluation of one checkpoint.

    Attributes:
        probe_acc: Linear-probe accuracy on the scored set (the validation split, in training).
        knn_acc: Weighted kNN accuracy on the scored set.
        rankme: RankMe effective rank of the probe's training features.
        feature_std: Mean per-dimension std of the L2-normalized probe training features.
        eval_time_s: Wall time of the whole evaluation in seconds.
        test_probe_acc: The same probe's accuracy on the test set, if one was given.
        test_knn_acc: The same kNN bank's accuracy on the test set, if one was given.
    """

    probe_acc: float
    knn_acc: float
    rankme: float
    feature_std: float
    eval_time_s: float
    test_probe_acc: float | None = None
    test_knn_acc: float | None = None

    def as_metrics(self) -> dict[str, float]:
        """Flat ``{name: value}`` dict for metric loggers: the field names, test ones only when set."""
        return {key: float(value) for key, value in asdict(self).items() if value is not None}


def evaluate_features(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    eval_x: torch.Tensor,
    eval_y: torch.Tensor,
    *,
    num_classes: int | None,
    k: int = 20,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> EvalResult:
    """Run the linear probe, the kNN classifier and the label-free diagnostics, and time them.

    The probe is fitted and the kNN bank filled on the train features, then both score the eval set (in
    training, the validation split) and, if given, the test set: the very same probe and bank for both. The
    label-free metrics (RankMe, Garrido et al. 2023; feature std) are computed on the train features, the
    larger set and the one the probe is fitted on.

    Args:
        train_x: Train features ``[N, D]``.
        train_y: Train labels ``[N]``.
        eval_x: Features ``[M, D]`` scored as ``probe_acc`` / ``knn_acc``.
        eval_y: Their labels ``[M]``.
        num_classes: Number of classes (None infers it from the labels).
        k: Neighbours for :func:`knn_accuracy`.
        test: Optional ``(features [T, D], labels [T])`` scored as ``test_probe_acc`` / ``test_knn_acc``.

    Returns:
        An :class:`EvalResult`; ``eval_time_s`` covers every measurement.
    """
    start = time.perf_counter()
    _check_split(eval_x, eval_y, "eval")
    scored = [(eval_x, eval_y)] + ([test] if test is not None else [])
    n_cls = _infer_num_classes(num_classes, train_y, *(y for _, y in scored))
    probe = LinearProbe.fit(train_x, train_y, num_classes=n_cls)
    probe_accs = [probe.accuracy(x, y) for x, y in scored]
    knn_accs = [knn_accuracy(train_x, train_y, x, y, k=k, num_classes=n_cls) for x, y in scored]
    rank = rankme(train_x)
    std = feature_std(train_x)
    # Every metric above ends in .item(), which synchronizes the device, so the wall time is honest on GPU.
    elapsed = time.perf_counter() - start
    return EvalResult(
        probe_acc=probe_accs[0],
        knn_acc=knn_accs[0],
        rankme=rank,
        feature_std=std,
        eval_time_s=elapsed,
        test_probe_acc=probe_accs[1] if test is not None else None,
        test_knn_acc=knn_accs[1] if test is not None else None,
    )
