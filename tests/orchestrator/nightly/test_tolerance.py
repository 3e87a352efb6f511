"""A tolerance's limit, pass rule and how it is shown."""

from __future__ import annotations

import math

from orchestrator.nightly.tolerance import Tolerance


def test_tolerance__relative_tolerance_uses_the_baselines_magnitude() -> None:
    assert Tolerance("rel", 0.5, "higher").limit(-10.0) == -15.0
    assert Tolerance("rel", 0.5, "lower").limit(-10.0) == -5.0


def test_tolerance__allowed_move_is_signed_in_the_bad_direction() -> None:
    assert Tolerance("rel", 0.15, "higher").allowed_move() == "-15%"
    assert Tolerance("abs", 0.02, "lower").allowed_move() == "+0.02"
    assert Tolerance("abs", 0.0, "lower").allowed_move() == "+0"


def test_tolerance__fraction_of_the_baseline() -> None:
    assert Tolerance("rel", 0.5, "lower").fraction_of(10.0) == 0.5
    assert Tolerance("abs", 5.0, "lower").fraction_of(-10.0) == 0.5
    assert Tolerance("abs", 5.0, "lower").fraction_of(0.0) == math.inf


def test_tolerance__a_non_finite_value_never_passes() -> None:
    assert not Tolerance("rel", 10.0, "higher").passes(1.0, math.nan)
    assert not Tolerance("rel", 10.0, "lower").passes(1.0, math.inf)
