"""jepa_core.evaluate.probe: the linear probe on synthetic features, and the raw-pixel baseline on digits."""

from __future__ import annotations

import pytest
import torch

from jepa_core.evaluate import LinearProbe, linear_probe, raw_pixel_probe

from .synthetic import blobs


def test_linear_probe__separable_blobs_near_perfect() -> None:
    x, y = blobs(150, 4, 16, spread=1.0, seed=0)
    train, test = torch.arange(600) % 3 != 0, torch.arange(600) % 3 == 0
    assert linear_probe(x[train], y[train], x[test], y[test]) >= 0.99


def test_linear_probe__random_labels_near_chance() -> None:
    gen = torch.Generator().manual_seed(1)
    x, xt = torch.randn(2000, 32, generator=gen), torch.randn(2000, 32, generator=gen)
    y, yt = torch.randint(0, 10, (2000,), generator=gen), torch.randint(0, 10, (2000,), generator=gen)
    acc = linear_probe(x, y, xt, yt, num_classes=10)
    assert 0.05 < acc < 0.16


def test_linear_probe__deterministic() -> None:
    x, y = blobs(60, 3, 8, spread=4.0, seed=2)
    runs = {linear_probe(x[::2], y[::2], x[1::2], y[1::2], max_iter=30) for _ in range(2)}
    assert len(runs) == 1


def test_linear_probe__works_under_inference_mode() -> None:
    x, y = blobs(40, 2, 4, spread=0.5, seed=3)
    with torch.inference_mode():
        feats = x * 1.0  # an inference tensor, as a frozen-encoder pass would produce
        acc = linear_probe(feats, y, feats, y)
    assert acc == 1.0


def test_linear_probe__constant_and_half_precision_features() -> None:
    x, y = blobs(40, 2, 4, spread=0.5, seed=4)
    x = torch.cat([x, torch.full((x.shape[0], 1), 3.0)], dim=1).half()  # constant dim must not produce NaN
    assert linear_probe(x, y, x, y) == 1.0


def test_linear_probe_class__fit_once_scores_like_linear_probe() -> None:
    x, y = blobs(60, 3, 8, spread=4.0, seed=13)
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
