"""This project's training step side by side with the official I-JEPA step, in one process.

``python -m jepa_core.bench --suite --official DIR`` imports the official code at run time from ``DIR``, a
checkout of facebookresearch/ijepa (:mod:`jepa_core.bench.official_code`; nothing of it is copied into this
project), builds its step (:mod:`jepa_core.bench.official_step`) and times it in interleaved rounds with this
project's three CPU-suite paths (:mod:`jepa_core.bench.rounds`).

Both get the same synthetic images through the same augmentation (this project's, on the whole batch). The
official collator cuts every context of a batch to the batch's smallest; this project's sampler keeps each
sample's own. For the comparison this project's ``mask.ratio`` is set to the value whose predicted tokens per
image (``K`` blocks of ``T`` patches, overlaps counted) match the official collator's on average
(:func:`~jepa_core.bench.mask_match.match_mask_ratio`), and ``loss.kind`` to ``smooth_l1``; the JSON says
both.
"""

from __future__ import annotations

import copy
import statistics
from pathlib import Path
from typing import Any

import torch

from jepa_core import machine
from jepa_core.bench.kernels import kernel_breakdown
from jepa_core.bench.mask_match import (
    TOKENS_TOLERANCE,
    match_mask_ratio,
    official_predicted_tokens,
    project_predicted_tokens,
)
from jepa_core.bench.official_code import OfficialCodeError, load_official, official_commit
from jepa_core.bench.official_step import MIN_OFFICIAL_GRID, OFFICIAL_MASKS, OfficialStepBench
from jepa_core.bench.rounds import TimedPath, interleave, path_figures, round_ratio, warm_up
from jepa_core.bench.step import StepBench
from jepa_core.bench.timing import matmul_peak_dtype
from jepa_core.config import Config
from jepa_core.devices import precision_words
from jepa_core.masks import MaskBatch
from jepa_core.models import Packing
from jepa_core.naive_step import naive_train_step

DRAWS = {"official": 1000, "match": 400, "check": 2000}  # batches drawn to estimate mean predicted tokens
GOALS = {"fast_ratio_vs_official": 1.2, "one_pass_ratio_vs_official": 1.5}


class ProjectStepBench(StepBench):
    """A :class:`~jepa_core.bench.step.StepBench` whose mask stats also hold each batch's predicted tokens
    per image, ``K * T`` (``predicted_tokens_mean``)."""

    def batch(self) -> tuple[torch.Tensor, MaskBatch, Packing]:
        """:meth:`StepBench.batch`, recording the batch's ``K * T`` too."""
        x, masks, packing = super().batch()
        self.mask_stats[-1]["predicted_tokens_mean"] = float(masks.target_idx[0].numel())
        return x, masks, packing


def _comparison_config(cfg: Config, ratio: float | None, one_pass: bool) -> Config:
    """``cfg`` with ``mask.ratio = ratio`` (unless None), smooth-L1 loss and ``predictor.one_pass``."""
    cfg = copy.deepcopy(cfg)
    cfg.mask.ratio = cfg.mask.ratio if ratio is None else ratio
    cfg.loss.kind, cfg.predictor.one_pass = "smooth_l1", one_pass
    return cfg


def run_official_suite(
    cfg: Config,
    device: torch.device,
    official_dir: str | Path,
    rounds: int = 5,
    warmup: int = 0,
    peak_size: int | None = None,
    match_ratio: bool = True,
) -> dict[str, Any]:
    """The CPU suite with the official step from ``official_dir`` timed beside this project's three paths.

    Each round times one step of the official code, the fast step (paper's predictor), the one-pass variant
    and the naive baseline, in an order reversed every other round, then a matmul-peak sample, so load drifts
    hit all alike; ratios are medians over rounds of ratios within a round. This project's paths use the
    ``mask.ratio`` of :func:`~jepa_core.bench.mask_match.match_mask_ratio` (``cfg``'s without
    ``match_ratio``) and smooth-L1 loss. Returns the CPU suite's per-path figures, each with
    ``ratio_vs_official``, and ``official``, ``mask_match``.

    Raises:
        OfficialCodeError: ``official_dir`` is not a usable checkout, or the grid is below 10x10 patches.
    """
    if (grid := cfg.data.image_size // cfg.model.patch_size) < MIN_OFFICIAL_GRID:
        raise OfficialCodeError(
            f"--official: the official collator never finishes on a {grid}x{grid} patch grid (its target "
            f"blocks must exceed min_keep={OFFICIAL_MASKS['min_keep']} patches); use {MIN_OFFICIAL_GRID}x"
            f"{MIN_OFFICIAL_GRID} or more (data.image_size / model.patch_size)"
        )
    code = load_official(official_dir)
    official_tokens = official_predicted_tokens(code, cfg, DRAWS["official"])
    ratio = match_mask_ratio(cfg, official_tokens, DRAWS["match"]) if match_ratio else None
    paper, variant = _comparison_config(cfg, ratio, False), _comparison_config(cfg, ratio, True)
    fast = ProjectStepBench(paper, device)
    benches: dict[str, TimedPath] = {"official": OfficialStepBench(code, paper, fast), "fast": fast}
    benches["one_pass"] = ProjectStepBench(variant, device)
    benches["naive"] = ProjectStepBench(paper, device, naive_train_step)
    flops = {name: b.flops_per_img(reps=2) for name, b in benches.items()}  # also warms every path up
    warm_up(benches, warmup)
    peak_dtype = matmul_peak_dtype(fast.amp)
    times, peaks = interleave(benches, rounds, device, peak_dtype, peak_size)
    batch, med, mean = cfg.train.batch_size, statistics.median, statistics.fmean
    official = path_figures(times["official"], peaks, flops["official"], batch)
    paths = {
        name: path_figures(ts, peaks, flops[name], batch, official=times["official"])
        for name, ts in times.items()
        if name != "official"
    }
    off_stats, stats = benches["official"].mask_stats, list(fast.mask_stats)  # the timed steps' masks
    context, official_context = (mean(s["context_patches_mean"] for s in st) for st in (stats, off_stats))
    official |= {
        "commit": official_commit(code.root),
        "dir": str(code.root),
        "context_patches_mean": official_context,
    }
    settings = {"input_size": cfg.data.image_size, "patch_size": cfg.model.patch_size}
    official["mask_settings"] = {**OFFICIAL_MASKS, **settings, "npred": cfg.mask.num_targets}
    official["target_patches_mean"] = mean(s["predicted_tokens_mean"] for s in off_stats)  # K blocks summed
    official["target_union_patches_mean"] = mean(s["target_union_patches_mean"] for s in off_stats)
    peak = med(p.wall_s for p in peaks)
    paths["fast"]["kernels"] = kernel_breakdown(fast, peak)  # draws two more batches: stats taken above
    expected = project_predicted_tokens(paper, paper.mask.ratio, DRAWS["check"], seed=1)  # fresh draws
    rel_diff = expected / official_tokens - 1.0
    mask_match = {
        "mask.ratio": paper.mask.ratio,
        "matched": match_ratio,  # False: mask.ratio came from --set
        "predicted_tokens_expected": expected,
        "official_predicted_tokens_expected": official_tokens,
        "predicted_tokens_rel_diff": rel_diff,
        "within_tolerance": abs(rel_diff) <= TOKENS_TOLERANCE,
        "tolerance": TOKENS_TOLERANCE,
        "context_at_least_official": context >= official_context,
    }
    shape = {"batch_size": batch, "image_size": cfg.data.image_size, "num_patches": grid * grid}
    return {
        **{"suite": "cpu", "comparison": "official", **machine.compute(torch.device("cpu")), **shape},
        "rounds": rounds,
        "overrides_for_comparison": {"mask.ratio": paper.mask.ratio, "loss.kind": "smooth_l1"},
        "mask_match": mask_match,
        # This project's masks in the timed steps: each sample's own context, the union of its target
        # blocks, and its predicted tokens K * T (what the official target_patches_mean counts).
        "context_patches_mean": context,
        "target_patches_mean": mean(s["target_patches_mean"] for s in stats),
        "predicted_tokens_mean": mean(s["predicted_tokens_mean"] for s in stats),
        "official": official,
        **paths,
        "speedup": round_ratio(times["naive"], times["fast"]),
        "one_pass_speedup": round_ratio(times["fast"], times["one_pass"]),
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_rounds": [p.wall_s for p in peaks],
        "peak_dtype": str(peak_dtype).removeprefix("torch."),
        "precision": precision_words(device.type, cfg.train.precision),  # every path's, the official's too
        "goals": dict(GOALS),
    }


def official_suite_summary(result: dict[str, Any]) -> str:
    """The comparison in one line, led by the ratios against the official step, each next to its goal."""
    off, fast, variant, naive = (result[k] for k in ("official", "fast", "one_pass", "naive"))
    goals, match = result["goals"], result["mask_match"]
    return (
        f"vs the official I-JEPA step (commit {off['commit'][:12]}): fast {fast['ratio_vs_official']:.2f}x "
        f"its img/s (goal {goals['fast_ratio_vs_official']}x), one-pass variant "
        f"{variant['ratio_vs_official']:.2f}x (goal {goals['one_pass_ratio_vs_official']}x; a different "
        f"model), naive baseline {naive['ratio_vs_official']:.2f}x; img/s official {off['img_per_s']:.1f}, "
        f"fast {fast['img_per_s']:.1f}, one-pass {variant['img_per_s']:.1f}, naive {naive['img_per_s']:.1f} "
        f"on {result['device']} ({result['threads']} threads, all in {result['precision']}); "
        f"predicted tokens/img official "
        f"{off['target_patches_mean']:.0f}, here {result['predicted_tokens_mean']:.0f} (mask.ratio="
        f"{match['mask.ratio']}, long-run mean {match['predicted_tokens_rel_diff']:+.1%}); context official "
        f"{off['context_patches_mean']:.0f} (cut to each batch's smallest), here "
        f"{result['context_patches_mean']:.0f}"
    )
