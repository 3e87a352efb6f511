"""The CUDA suite: bf16 MFU and img/s of ViT-S/16 at 224 px, then the time ``fmnist_gpu`` takes to reach 90%
linear-probe accuracy (:class:`AccuracyClock`, :func:`time_to_accuracy`)."""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

import torch

from jepa_core.bench.step import run_bench
from jepa_core.config import Config, build_config
from jepa_core.data import DataError
from jepa_core.train import EpochReport, train

GOALS = {"mfu": 0.4, "time_to_target_s": 120.0}


class AccuracyClock:
    """``on_epoch`` callback timing a run to a linear-probe accuracy; stops it at the target or the budget.

    The clock starts when the object is created (before ``train`` loads data and builds the model), so the
    time to target includes every cost a user waits for.
    """

    def __init__(self, target: float, budget_s: float) -> None:
        self.target, self.budget_s = target, budget_s
        self.start = time.perf_counter()
        self.curve: list[tuple[int, float, float]] = []  # (epoch, wall seconds, probe accuracy)
        self.reached_s: float | None = None

    def __call__(self, report: EpochReport) -> bool:
        """Records the epoch's probe accuracy, if evaluated; True while the run should go on."""
        wall = time.perf_counter() - self.start
        acc = report.metrics.get("probe_acc")
        if acc is not None:
            self.curve.append((report.epoch, wall, float(acc)))
            if acc >= self.target and self.reached_s is None:
                self.reached_s = wall
        return self.reached_s is None and wall < self.budget_s


def time_to_accuracy(
    device: torch.device,
    budget_s: float,
    target: float = 0.90,
    preset: str | None = "fmnist_gpu",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Trains ``preset``, evaluating each epoch, until the probe reaches ``target`` or the budget is spent.

    A dataset that cannot be loaded gives ``{"preset": ..., "error": message}`` instead of figures.
    """
    run = {"train.device": str(device), "train.progress": False, "eval.every": 1}
    cfg = build_config(preset, overrides=[run, overrides or {}])
    clock = AccuracyClock(target, budget_s)
    try:
        with tempfile.TemporaryDirectory(prefix="jepa_tta_") as out:
            final = train(cfg, out, on_epoch=clock)
    except DataError as exc:
        return {"preset": preset, "error": str(exc)}
    return {
        "preset": preset,
        "target_probe_acc": target,
        "budget_s": budget_s,
        "reached": clock.reached_s is not None,
        "time_to_target_s": clock.reached_s,
        "best_probe_acc": max((acc for _, _, acc in clock.curve), default=math.nan),
        "trainer_wall_s": final.get("wall_time_s"),
        "epochs": final.get("epoch"),
        "curve": clock.curve,
    }


def run_cuda_suite(
    cfg: Config, device: torch.device, steps: int, warmup: int, tta_budget_s: float, peak_size: int | None
) -> dict[str, Any]:
    """bf16 MFU and img/s of ``cfg`` (ViT-S/16 at 224 px by default), then ``fmnist_gpu`` time to 90%."""
    step = run_bench(cfg, device, steps, warmup, peak_size)
    return {
        "suite": "cuda",
        **step,
        "mfu": step["fraction_of_peak"],
        "compiled": cfg.train.compile,
        "time_to_accuracy": time_to_accuracy(device, tta_budget_s),
        "goals": dict(GOALS),
    }
