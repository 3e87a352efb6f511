"""The CPU suite: the fast step, its one-pass variant and the naive baseline, interleaved on one config.

The three are timed on the same weights, images and masks: the fast step (``train.train_step``) with the
paper's predictor (Assran et al., 2023); the same step with the one-pass predictor variant
(``predictor.one_pass``, a different model, so a speed comparison only); and the naive baseline
(``naive_step.naive_train_step``), a straightforward implementation of the paper's step written in this
project, not the official code. Rounds interleave them with a matmul-peak sample
(:mod:`jepa_core.bench.rounds`).
"""

from __future__ import annotations

import copy
import statistics
from typing import Any

import torch

from jepa_core import machine
from jepa_core.bench.kernels import kernel_breakdown
from jepa_core.bench.rounds import interleave, path_figures, round_ratio, warm_up
from jepa_core.bench.step import StepBench
from jepa_core.bench.timing import matmul_peak_dtype
from jepa_core.config import Config
from jepa_core.devices import precision_words
from jepa_core.naive_step import naive_loss, naive_train_step

GOALS = {"speedup": 1.5, "fast_fraction_of_peak": 0.7}


def loss_agreement(fast: StepBench, one_pass: StepBench, naive: StepBench) -> dict[str, float]:
    """The objectives on one batch and one set of weights: the baseline must compute the fast path's loss.

    The one-pass variant is a different model, so its loss is reported beside them, not checked. Draws one
    batch from each bench (identical by construction) so all keep seeing the same masks later.
    """
    x, masks, packing = fast.batch()
    one_pass.batch()
    naive.batch()
    cfg = fast.cfg
    idx = (masks.context_idx, masks.context_valid, masks.target_idx)
    with torch.no_grad(), torch.autocast(x.device.type, dtype=fast.amp, enabled=fast.amp is not None):
        f = float(fast.model.loss(x, *idx, cfg.loss.kind, packing))
        v = float(one_pass.model.loss(x, *idx, cfg.loss.kind, packing))
        n = float(naive_loss(fast.model, x, masks, cfg.loss.kind))
    return {"loss_fast": f, "loss_naive": n, "loss_rel_diff": abs(f - n) / abs(n), "loss_one_pass": v}


def _with_one_pass(cfg: Config, one_pass: bool) -> Config:
    cfg = copy.deepcopy(cfg)
    cfg.predictor.one_pass = one_pass
    return cfg


def run_cpu_suite(
    cfg: Config, device: torch.device, rounds: int = 5, warmup: int = 0, peak_size: int | None = None
) -> dict[str, Any]:
    """The fast step, its one-pass variant and the naive baseline on one config, measured in this process.

    ``fast`` and ``naive`` compute the paper's model (``cfg.predictor.one_pass`` is overridden to False for
    them); ``one_pass`` is the same step with the one-pass predictor variant, a different model, timed to
    show what the variant saves. Each round times one step of each path (reversing the order every other
    round) and one matmul-peak sample, so a change in machine load between rounds moves every path and the
    peak together; every ratio is a median over rounds of ratios within a round. ``flops_per_img`` is each
    path's own executed work (the variant attends the context once instead of once per target block; the
    baseline computes every padded token), so ``fraction_of_peak`` is how well each path uses the hardware.
    ``fast.kernels``: where the fast step's time goes, and the ceiling its matmul and attention kernels set
    (:func:`~jepa_core.bench.kernels.kernel_breakdown`).
    """
    paper, variant = _with_one_pass(cfg, False), _with_one_pass(cfg, True)
    benches = {
        "fast": StepBench(paper, device),
        "one_pass": StepBench(variant, device),
        "naive": StepBench(paper, device, naive_train_step),
    }
    agreement = loss_agreement(benches["fast"], benches["one_pass"], benches["naive"])
    flops = {name: b.flops_per_img(reps=2) for name, b in benches.items()}  # also warms every path up
    warm_up(benches, warmup)
    peak_dtype = matmul_peak_dtype(benches["fast"].amp)
    times, peaks = interleave(benches, rounds, device, peak_dtype, peak_size)
    batch, med = cfg.train.batch_size, statistics.median
    paths = {name: path_figures(ts, peaks, flops[name], batch) for name, ts in times.items()}
    stats = list(benches["fast"].mask_stats)  # the timed steps' masks (the breakdown draws two more)
    peak = med(p.wall_s for p in peaks)
    paths["fast"]["kernels"] = kernel_breakdown(benches["fast"], peak)
    return {
        "suite": "cpu",
        **machine.compute(device),
        "batch_size": batch,
        "image_size": cfg.data.image_size,
        "rounds": rounds,
        "context_patches_mean": statistics.fmean(s["context_patches_mean"] for s in stats),
        "target_patches_mean": statistics.fmean(s["target_patches_mean"] for s in stats),
        "num_patches": benches["fast"].model.encoder.num_patches,
        **agreement,
        "fast": paths["fast"],
        "one_pass": paths["one_pass"],
        "naive": paths["naive"],
        # Steps of one round run back to back, so their ratio sees one machine state; the ratio of the two
        # medians can mix a quiet round of one path with a busy round of the other.
        "speedup": round_ratio(times["naive"], times["fast"]),
        "speedup_of_medians": paths["fast"]["img_per_s"] / paths["naive"]["img_per_s"],
        "speedup_cpu_time": round_ratio(times["naive"], times["fast"], "cpu_s"),
        # What the variant saves over the paper's fast step (a different model: not a like-for-like speedup).
        "one_pass_speedup": round_ratio(times["fast"], times["one_pass"]),
        "one_pass_speedup_cpu_time": round_ratio(times["fast"], times["one_pass"], "cpu_s"),
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_rounds": [p.wall_s for p in peaks],
        "matmul_peak_gflop_per_cpu_s": med(p.cpu_s for p in peaks),
        "peak_dtype": str(peak_dtype).removeprefix("torch."),
        "precision": precision_words(device.type, cfg.train.precision),
        "goals": dict(GOALS),
    }


def cpu_suite_summary(result: dict[str, Any]) -> str:
    """The CPU suite's verdict in one line, each figure next to its goal."""
    fast, variant, naive, goals = result["fast"], result["one_pass"], result["naive"], result["goals"]
    return (
        f"fast {fast['img_per_s']:.1f} img/s, naive baseline {naive['img_per_s']:.1f}: "
        f"{result['speedup']:.2f}x (goal {goals['speedup']}x); "
        f"one-pass variant {variant['img_per_s']:.1f} img/s, "
        f"{result['one_pass_speedup']:.2f}x the fast step (a different model); fast at "
        f"{fast['fraction_of_peak']:.0%} of the {result['matmul_peak_gflops']:.0f} GFLOP/s "
        f"{result['peak_dtype']} matmul peak "
        f"(goal {goals['fast_fraction_of_peak']:.0%}; "
        f"{fast['kernels']['ceiling_fraction_of_peak']:.0%} if only matmul and attention kernels took time)"
    )
