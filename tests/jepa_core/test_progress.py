"""The epoch line's ETA and durations (jepa_core.progress)."""

from __future__ import annotations

from jepa_core.progress import epoch_line, eta_seconds, format_duration


def test_eta__mean_epoch_time_times_epochs_left():
    assert eta_seconds(300.0, 2, 6) == 600.0  # 150 s an epoch, 4 to go
    assert eta_seconds(300.0, 6, 6) == 0.0
    assert eta_seconds(0.0, 0, 6) == 0.0  # nothing measured yet, no division by zero
    assert [format_duration(s) for s in (0, 45.4, 59.6, 252, 3599.7, 7500)] == [
        "0s",
        "45s",
        "1m00s",
        "4m12s",
        "1h00m",
        "2h05m",
    ]


def test_epoch_line__metrics_then_the_eta_of_the_epochs_left():
    m = {"epoch": 2, "train_loss": 0.5, "img_per_s": 812.4, "epoch_time_s": 1.23}
    assert epoch_line(m, 4, elapsed=300.0) == "epoch 2/4 | loss 0.5000 | 812 img/s | 1.2 s | eta 5m00s"
    evaluated = {**m, "epoch": 4, "probe_acc": 0.5, "knn_acc": 0.25, "rankme": 12.34}
    last = {**evaluated, "test_probe_acc": 0.75, "test_knn_acc": 0.125}
    assert epoch_line(evaluated, 4, elapsed=9.0).endswith(
        " | 1.2 s | val probe 0.5000 | val knn 0.2500 | rankme 12.3 | eta 0s"
    )
    assert epoch_line(last, 4, elapsed=9.0).endswith(
        " | rankme 12.3 | test probe 0.7500 | test knn 0.1250 | eta 0s"
    )
