"""jepa_core.evaluate.result: probe, kNN and label-free metrics of one set of features, as metrics."""

from __future__ import annotations

from jepa_core.evaluate import EvalResult, evaluate_features

from .synthetic import blobs


def test_evaluate_features__result_and_metric_keys() -> None:
    x, y = blobs(50, 3, 16, spread=1.0, seed=12)
    result = evaluate_features(x[::2], y[::2], x[1::2], y[1::2], num_classes=3, k=5)
    assert isinstance(result, EvalResult)
    metrics = result.as_metrics()
    assert list(metrics) == ["probe_acc", "knn_acc", "rankme", "feature_std", "eval_time_s"]
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["probe_acc"] == 1.0 and metrics["knn_acc"] == 1.0
    assert 1.0 <= metrics["rankme"] <= 16 and metrics["eval_time_s"] > 0


def test_evaluate_features__test_set_scored_by_the_same_probe_and_bank() -> None:
    x, y = blobs(50, 3, 16, spread=6.0, seed=14)
    train, held_out = (x[::2], y[::2]), (x[1::2], y[1::2])
    alone = evaluate_features(*train, *held_out, num_classes=3, k=5)
    both = evaluate_features(*train, *held_out, num_classes=3, k=5, test=held_out)
    metrics = both.as_metrics()
    assert list(metrics)[-2:] == ["test_probe_acc", "test_knn_acc"]
    # Scoring the same images as test gives the validation figures: one probe, one bank, fit once.
    assert both.test_probe_acc == both.probe_acc == alone.probe_acc
    assert both.test_knn_acc == both.knn_acc == alone.knn_acc
    assert both.rankme == alone.rankme  # label-free metrics stay on the train features
