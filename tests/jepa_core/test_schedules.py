from __future__ import annotations

import math

import pytest

from jepa_core import schedules


def test_learning_rate__warmup_then_cosine_exact():
    args = dict(total_steps=100, warmup_steps=10, start_lr=1e-4, peak_lr=1e-3, final_lr=1e-6)
    assert schedules.learning_rate(0, **args) == pytest.approx(1e-4)
    assert schedules.learning_rate(5, **args) == pytest.approx(1e-4 + 0.5 * 9e-4)
    assert schedules.learning_rate(10, **args) == pytest.approx(1e-3)
    # halfway through the cosine: the mean of peak and final
    assert schedules.learning_rate(55, **args) == pytest.approx((1e-3 + 1e-6) / 2)
    assert schedules.learning_rate(100, **args) == pytest.approx(1e-6)


def test_weight_decay__cosine_ramp_exact():
    assert schedules.weight_decay(0, 10, 0.04, 0.4) == pytest.approx(0.04)
    assert schedules.weight_decay(5, 10, 0.04, 0.4) == pytest.approx(0.22)
    assert schedules.weight_decay(10, 10, 0.04, 0.4) == pytest.approx(0.4)
    assert schedules.weight_decay(3, 10, 0.04, 0.4) == pytest.approx(
        0.4 - 0.18 * (1 + math.cos(0.3 * math.pi))
    )


def test_ema_momentum__linear_ramp_exact():
    assert schedules.ema_momentum(0, 1000, 0.996, 1.0) == 0.996
    assert schedules.ema_momentum(250, 1000, 0.996, 1.0) == pytest.approx(0.997)
    assert schedules.ema_momentum(1000, 1000, 0.996, 1.0) == pytest.approx(1.0)
    assert schedules.ema_momentum(2000, 1000, 0.996, 1.0) == pytest.approx(1.0)  # clamped past the end


def test_schedules__are_pure_functions_of_step():
    a = [schedules.learning_rate(s, 50, 5, 0.0, 1.0, 0.0) for s in range(50)]
    b = [schedules.learning_rate(s, 50, 5, 0.0, 1.0, 0.0) for s in reversed(range(50))][::-1]
    assert a == b
