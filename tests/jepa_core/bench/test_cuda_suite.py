from __future__ import annotations

from pathlib import Path

import torch

from jepa_core.bench.cuda_suite import AccuracyClock, time_to_accuracy
from jepa_core.train import EpochReport
from tests.jepa_core.bench.conftest import positive
from tests.jepa_core.conftest import TINY as TINY_TRAIN


def test_accuracy_clock__stops_at_target_or_budget():
    clock = AccuracyClock(target=0.9, budget_s=1e9)
    assert clock(EpochReport(1, {"train_loss": 1.0}, Path("c.pt"))) is True  # no evaluation this epoch
    assert clock(EpochReport(2, {"probe_acc": 0.85}, Path("c.pt"))) is True
    assert clock(EpochReport(3, {"probe_acc": 0.91}, Path("c.pt"))) is False
    assert clock.reached_s is not None and [e for e, _, _ in clock.curve] == [2, 3]
    assert AccuracyClock(target=0.9, budget_s=0.0)(EpochReport(1, {"probe_acc": 0.5}, Path("c.pt"))) is False


def test_time_to_accuracy__reports_the_epoch_that_reached_the_target():
    # The CUDA suite's plumbing, run on the CPU with a tiny digits run: a target of 0 is met at once.
    small = {
        "train.steps_per_epoch": 1,
        "train.num_threads": 1,
        "eval.train_subset": 100,
        "eval.test_subset": 50,
    }
    threads = torch.get_num_threads()
    try:
        result = time_to_accuracy(
            torch.device("cpu"), 600, target=0.0, preset=None, overrides={**TINY_TRAIN, **small}
        )
    finally:
        torch.set_num_threads(threads)
    assert result["reached"] and result["epochs"] == 1
    assert positive(result["time_to_target_s"]) and 0 <= result["best_probe_acc"] <= 1
