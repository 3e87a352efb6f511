"""What a run prints as it goes: the one summary line per epoch, with the run's estimated time left."""

from __future__ import annotations


def eta_seconds(elapsed: float, done: int, total: int) -> float:
    """Time left for the run's remaining epochs at the mean wall time (training and evaluation) of the
    ``done`` epochs so far; a resumed run counts the epochs of its checkpoint too."""
    return elapsed / max(1, done) * max(0, total - done)


def format_duration(seconds: float) -> str:
    """``45s``, ``4m12s`` or ``2h05m``: short enough for a log line, as precise as an estimate deserves."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def epoch_summary(m: dict[str, float], epochs: int) -> str:
    """``epoch 3/10 | loss 0.1234 | 812 img/s | 4.2 s`` then, when the epoch was evaluated, the validation
    probe, kNN and RankMe, and, at the last epoch, the test probe and kNN."""
    parts = [
        f"epoch {int(m['epoch'])}/{epochs}",
        f"loss {m['train_loss']:.4f}",
        f"{m['img_per_s']:.0f} img/s",
        f"{m['epoch_time_s']:.1f} s",
    ]
    if "probe_acc" in m:
        parts += [
            f"val probe {m['probe_acc']:.4f}",
            f"val knn {m['knn_acc']:.4f}",
            f"rankme {m['rankme']:.1f}",
        ]
    if "test_probe_acc" in m:
        parts += [f"test probe {m['test_probe_acc']:.4f}", f"test knn {m['test_knn_acc']:.4f}"]
    return " | ".join(parts)


def epoch_line(m: dict[str, float], epochs: int, elapsed: float) -> str:
    """:func:`epoch_summary` of the epoch ``m`` ends, followed by ``| eta`` and the run's time left."""
    eta = eta_seconds(elapsed, int(m["epoch"]), epochs)
    return f"{epoch_summary(m, epochs)} | eta {format_duration(eta)}"
