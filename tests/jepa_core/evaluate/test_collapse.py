"""jepa_core.evaluate.collapse: RankMe, the feature std and the collapse warning."""

from __future__ import annotations

import math

import pytest
import torch

from jepa_core.evaluate import collapse_warning, feature_std, rankme


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
