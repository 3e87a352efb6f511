"""Metric names and units, and which metrics follow the machine's speed."""

from __future__ import annotations

import pytest

from orchestrator.nightly.metrics import KNOWN_METRICS, normalise, scaling, unit_of


@pytest.mark.parametrize(
    ("metric", "scale"),
    [
        ("bench_cpu.img_per_s", 1),
        ("bench_cuda.achieved_gflops", 1),
        ("quality.img_per_s", 1),
        ("bench_cpu.step_s_median", -1),
        ("quality.wall_time_s", -1),
        ("overhead.extra_s", -1),
        ("overhead.sweep_wall_s", -1),
        ("suite.wall_s", -1),
        ("bench_cpu.matmul_peak_gflops", 0),
        ("bench_cpu.fraction_of_peak", 0),
        ("overhead.wall_ratio", 0),
        ("quality.probe_acc", 0),
        ("quality.knn_acc", 0),
        ("quality.rankme", 0),
        ("quality.train_loss", 0),
    ],
)
def test_scaling__timing_metrics_follow_the_machine_quality_metrics_do_not(metric: str, scale: int) -> None:
    assert scaling(metric) == scale


def test_unit_of__every_number_has_a_unit_and_seconds_are_recognised_by_suffix() -> None:
    assert unit_of("bench_cpu.img_per_s") == "img/s"
    assert unit_of("overhead.extra_s") == "s" and unit_of("quality.wall_time_s") == "s"
    assert unit_of("quality.matmul_peak_spread") == "x"
    assert unit_of("quality.train_loss") == ""


def test_normalise__seconds_scale_with_the_peak_throughput_against_it() -> None:
    assert normalise(20.0, -1, 50.0, 100.0) == pytest.approx(10.0)  # at twice the peak, half the time
    assert normalise(20.0, 1, 50.0, 100.0) == pytest.approx(40.0)
    assert normalise(20.0, 0, 50.0, 100.0) == 20.0


def test_known_metrics__sections_and_their_yardsticks() -> None:
    assert "bench_cuda.fraction_of_peak" in KNOWN_METRICS and "suite.wall_s" in KNOWN_METRICS
    assert "quality.matmul_peak_gflops" in KNOWN_METRICS and "overhead.other_cpu_share" in KNOWN_METRICS
    assert len(set(KNOWN_METRICS)) == len(KNOWN_METRICS)
