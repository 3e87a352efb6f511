"""One evaluation of frozen features: probe, kNN and the label-free metrics, scored and timed together."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from jepa_core.evaluate.collapse import feature_std, rankme
from jepa_core.evaluate.inputs import check_split, infer_num_classes
from jepa_core.evaluate.knn import knn_accuracy
from jepa_core.evaluate.probe import LinearProbe


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
    check_split(eval_x, eval_y, "eval")
    scored = [(eval_x, eval_y)] + ([test] if test is not None else [])
    n_cls = infer_num_classes(num_classes, train_y, *(y for _, y in scored))
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
