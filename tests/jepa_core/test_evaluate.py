"""Tests for jepa_core.evaluate: probes, kNN, RankMe and collapse diagnostics on synthetic data."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from jepa_core.evaluate import (
    EvalResult,
    LinearProbe,
    collapse_warning,
    evaluate_features,
    extract_features,
    extract_features_loader,
    feature_std,
    knn_accuracy,
    linear_probe,
    rankme,
    raw_pixel_probe,
)


def _blobs(
    n_per_class: int, num_classes: int, dim: int, spread: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs around random, well-separated centres."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=gen) * 5.0
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(y.shape[0], dim, generator=gen)
    return x, y


# --------------------------------------------------------------------------------------------------------
# extract_features / extract_features_loader
# --------------------------------------------------------------------------------------------------------


def test_extract_features__batches_transform_and_dtype() -> None:
    images = torch.randint(0, 256, (10, 3, 2, 2), dtype=torch.uint8)
    seen: list[int] = []

    def encode(b: torch.Tensor) -> torch.Tensor:
        seen.append(b.shape[0])
        assert b.dtype == torch.float16  # the transform ran before encode
        return b.flatten(1)[:, :5]

    feats = extract_features(encode, images, batch_size=4, transform=lambda b: b.to(torch.float16) / 255)
    assert seen == [4, 4, 2]
    assert feats.dtype == torch.float32 and feats.shape == (10, 5)
    expected = (images.to(torch.float16) / 255).flatten(1)[:, :5].float()
    torch.testing.assert_close(feats, expected)


def test_extract_features__module_eval_mode_restored() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(4, 3))
    model.train()
    model[2].eval()  # a deliberately frozen submodule must stay frozen afterwards
    x = torch.randn(6, 2, 2)
    a = extract_features(model, x, batch_size=4)
    b = extract_features(model, x)
    torch.testing.assert_close(a, b)  # dropout inactive -> deterministic
    assert model.training and model[1].training and not model[2].training
    assert not a.requires_grad


def test_extract_features__rejects_non_2d_output() -> None:
    with pytest.raises(ValueError, match=r"\[b, D\]"):
        extract_features(lambda b: b, torch.zeros(3, 2, 2))


def test_extract_features_loader__collects_features_and_labels() -> None:
    batches = [(torch.ones(3, 2), torch.tensor([0, 1, 2])), [torch.zeros(2, 2), torch.tensor([1, 1])]]
    feats, labels = extract_features_loader(lambda b: b * 2, batches, transform=lambda b: b + 1)
    assert feats.shape == (5, 2) and feats.dtype == torch.float32
    torch.testing.assert_close(feats, torch.tensor([[4.0, 4.0]] * 3 + [[2.0, 2.0]] * 2))
    assert labels.tolist() == [0, 1, 2, 1, 1] and labels.dtype == torch.long


def test_extract_features_loader__empty_loader_raises() -> None:
    with pytest.raises(ValueError, match="no batches"):
        extract_features_loader(lambda b: b, [])


# --------------------------------------------------------------------------------------------------------
# linear_probe
# --------------------------------------------------------------------------------------------------------


def test_linear_probe__separable_blobs_near_perfect() -> None:
    x, y = _blobs(150, 4, 16, spread=1.0, seed=0)
    train, test = torch.arange(600) % 3 != 0, torch.arange(600) % 3 == 0
    assert linear_probe(x[train], y[train], x[test], y[test]) >= 0.99


def test_linear_probe__random_labels_near_chance() -> None:
    gen = torch.Generator().manual_seed(1)
    x, xt = torch.randn(2000, 32, generator=gen), torch.randn(2000, 32, generator=gen)
    y, yt = torch.randint(0, 10, (2000,), generator=gen), torch.randint(0, 10, (2000,), generator=gen)
    acc = linear_probe(x, y, xt, yt, num_classes=10)
    assert 0.05 < acc < 0.16


def test_linear_probe__deterministic() -> None:
    x, y = _blobs(60, 3, 8, spread=4.0, seed=2)
    runs = {linear_probe(x[::2], y[::2], x[1::2], y[1::2], max_iter=30) for _ in range(2)}
    assert len(runs) == 1


def test_linear_probe__works_under_inference_mode() -> None:
    x, y = _blobs(40, 2, 4, spread=0.5, seed=3)
    with torch.inference_mode():
        feats = x * 1.0  # an inference tensor, as a frozen-encoder pass would produce
        acc = linear_probe(feats, y, feats, y)
    assert acc == 1.0


def test_linear_probe__constant_and_half_precision_features() -> None:
    x, y = _blobs(40, 2, 4, spread=0.5, seed=4)
    x = torch.cat([x, torch.full((x.shape[0], 1), 3.0)], dim=1).half()  # constant dim must not produce NaN
    assert linear_probe(x, y, x, y) == 1.0


def test_linear_probe_class__fit_once_scores_like_linear_probe() -> None:
    x, y = _blobs(60, 3, 8, spread=4.0, seed=13)
    probe = LinearProbe.fit(x[::2], y[::2], num_classes=3, max_iter=30)
    assert probe.accuracy(x[1::2], y[1::2]) == linear_probe(x[::2], y[::2], x[1::2], y[1::2], max_iter=30)
    with pytest.raises(ValueError, match="feature dims differ"):
        probe.accuracy(x[:, :4], y)


def test_linear_probe__label_out_of_range_raises() -> None:
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="out of range"):
        linear_probe(x, torch.tensor([0, 1, 2, 3]), x, torch.tensor([0, 1, 2, 3]), num_classes=3)


def test_linear_probe__large_random_features_completes() -> None:
    # Sanity that the 10k x 192 case finishes (no wall-time assertion: shared CI cores vary).
    gen = torch.Generator().manual_seed(5)
    x, xt = torch.randn(10000, 192, generator=gen), torch.randn(2000, 192, generator=gen)
    y, yt = torch.randint(0, 10, (10000,), generator=gen), torch.randint(0, 10, (2000,), generator=gen)
    acc = linear_probe(x, y, xt, yt, num_classes=10)
    assert 0.0 <= acc <= 1.0


# --------------------------------------------------------------------------------------------------------
# knn_accuracy
# --------------------------------------------------------------------------------------------------------


def test_knn_accuracy__separated_clusters_perfect() -> None:
    gen = torch.Generator().manual_seed(6)
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.arange(2).repeat_interleave(30)
    x = centres[y] + 0.05 * torch.randn(60, 3, generator=gen)
    assert knn_accuracy(x[::2], y[::2], x[1::2], y[1::2], k=5, chunk=7) == 1.0


def test_knn_accuracy__k_larger_than_train_is_clamped() -> None:
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    test = torch.tensor([[1.0, 0.05], [0.05, 1.0]])
    # All 3 neighbours vote; similarity weighting (T=0.07) lets the nearest class win.
    acc = knn_accuracy(train, torch.tensor([0, 0, 1]), test, torch.tensor([0, 1]), k=50)
    assert acc == 1.0


def test_knn_accuracy__tiny_temperature_stays_finite() -> None:
    x, y = _blobs(20, 3, 8, spread=1.0, seed=7)
    assert knn_accuracy(x, y, x, y, k=5, temperature=1e-3) == 1.0


# --------------------------------------------------------------------------------------------------------
# rankme / feature_std / collapse_warning
# --------------------------------------------------------------------------------------------------------


def test_rankme__low_rank_product_bounded_by_rank() -> None:
    gen = torch.Generator().manual_seed(8)
    r = 8
    x = torch.randn(2000, r, generator=gen) @ torch.randn(r, 64, generator=gen)
    value = rankme(x)
    assert r / 2 < value <= r + 1e-3


def test_rankme__isotropic_gaussian_close_to_dim() -> None:
    gen = torch.Generator().manual_seed(9)
    assert rankme(torch.randn(4000, 32, generator=gen)) > 0.95 * 32


def test_rankme__collapsed_rows_near_one() -> None:
    x = torch.randn(1, 48).expand(500, 48)
    assert rankme(x) == pytest.approx(1.0, abs=1e-3)


def test_rankme__diagonal_matches_hand_formula() -> None:
    sigma = [4.0, 3.0, 2.0, 1.0]
    eps = 1e-7
    p = [s / sum(sigma) + eps for s in sigma]
    expected = math.exp(-sum(q * math.log(q) for q in p))
    assert rankme(torch.diag(torch.tensor(sigma)), eps=eps) == pytest.approx(expected, rel=1e-9)


def test_rankme__rejects_non_matrix() -> None:
    with pytest.raises(ValueError):
        rankme(torch.zeros(3))


def test_feature_std__collapsed_zero_and_isotropic_inverse_sqrt_dim() -> None:
    assert feature_std(torch.randn(1, 16).expand(100, 16)) == pytest.approx(0.0, abs=1e-6)
    iso = feature_std(torch.randn(5000, 64, generator=torch.Generator().manual_seed(10)))
    assert iso == pytest.approx(1 / math.sqrt(64), rel=0.05)


def test_collapse_warning__fires_only_for_low_rank() -> None:
    msg = collapse_warning(1.2, dim=192)
    assert msg is not None and "collapse" in msg and "\n" not in msg
    assert collapse_warning(150.0, dim=192) is None
    assert collapse_warning(float("nan"), dim=192) is not None


# --------------------------------------------------------------------------------------------------------
# raw_pixel_probe / evaluate_features
# --------------------------------------------------------------------------------------------------------


def test_raw_pixel_probe__sklearn_digits_above_090() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float64)  # [1797, 8, 8], values 0..16
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(11))
    split = int(0.8 * images.shape[0])
    tr, te = perm[:split], perm[split:]
    acc = raw_pixel_probe(images[tr], labels[tr], images[te], labels[te], transform=lambda b: b.float() / 16)
    assert acc > 0.9


def test_evaluate_features__result_and_metric_keys() -> None:
    x, y = _blobs(50, 3, 16, spread=1.0, seed=12)
    result = evaluate_features(x[::2], y[::2], x[1::2], y[1::2], num_classes=3, k=5)
    assert isinstance(result, EvalResult)
    metrics = result.as_metrics()
    assert list(metrics) == ["probe_acc", "knn_acc", "rankme", "feature_std", "eval_time_s"]
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["probe_acc"] == 1.0 and metrics["knn_acc"] == 1.0
    assert 1.0 <= metrics["rankme"] <= 16 and metrics["eval_time_s"] > 0


def test_evaluate_features__test_set_scored_by_the_same_probe_and_bank() -> None:
    x, y = _blobs(50, 3, 16, spread=6.0, seed=14)
    train, held_out = (x[::2], y[::2]), (x[1::2], y[1::2])
    alone = evaluate_features(*train, *held_out, num_classes=3, k=5)
    both = evaluate_features(*train, *held_out, num_classes=3, k=5, test=held_out)
    metrics = both.as_metrics()
    assert list(metrics)[-2:] == ["test_probe_acc", "test_knn_acc"]
    # Scoring the same images as test gives the validation figures: one probe, one bank, fit once.
    assert both.test_probe_acc == both.probe_acc == alone.probe_acc
    assert both.test_knn_acc == both.knn_acc == alone.knn_acc
    assert both.rankme == alone.rankme  # label-free metrics stay on the train features
