"""This project's training step side by side with the official I-JEPA step, in one process.

``python -m jepa_core.bench --suite --official DIR`` imports the official code at run time from ``DIR``, a
checkout of facebookresearch/ijepa (nothing of it is copied into this project), and builds its encoder,
predictor and target encoder with this config's widths and depths (their sin-cos positional embeddings and
their constructors' init) and its ``MaskCollator`` with the paper's mask settings (:data:`OFFICIAL_MASKS`).
Its step is timed as ``src/train.py`` runs it: the collator on a list of ``(image, label)`` samples, the
target encoder on the full image with a layer norm over features, the context encoder on the context mask,
the predictor, smooth-L1 loss, backward, AdamW (this config's lr, weight decay and betas; their parameter
groups), then the EMA of the target encoder one parameter tensor at a time. Left out, as bookkeeping this
project's step does not do either: the lr/wd scheduler steps, gradient-norm logging, the loss all-reduce.

Both get the same synthetic images through the same augmentation (this project's, on the whole batch). The
official collator cuts every context of a batch to the batch's smallest; this project's sampler keeps each
sample's own. For the comparison this project's ``mask.ratio`` is set to the value whose predicted tokens per
image (``K`` blocks of ``T`` patches, overlaps counted) match the official collator's on average
(:func:`match_mask_ratio`), and ``loss.kind`` to ``smooth_l1``; the JSON says both.
"""

from __future__ import annotations

import copy
import importlib
import statistics
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jepa_core import bench
from jepa_core import machine as machine_info
from jepa_core.config import Config
from jepa_core.masks import MaskBatch, mask_sampler
from jepa_core.models import Packing
from jepa_core.naive_step import naive_train_step

# The modules and names used here, as the official code imports them (``src`` is a top-level package).
OFFICIAL_NAMES = {
    "src.models.vision_transformer": ("VisionTransformer", "VisionTransformerPredictor"),
    "src.masks.multiblock": ("MaskCollator",),
    "src.masks.utils": ("apply_masks",),
    "src.utils.tensors": ("repeat_interleave_batch",),
}
# The mask settings of every official config (configs/in1k_*.yaml): target blocks of scale 0.15-0.2 and
# aspect 0.75-1.5, one context block of scale 0.85-1.0 that excludes them, at least 10 patches kept.
OFFICIAL_MASKS: dict[str, Any] = {
    "pred_mask_scale": (0.15, 0.2),
    "enc_mask_scale": (0.85, 1.0),
    "aspect_ratio": (0.75, 1.5),
    "nenc": 1,
    "min_keep": 10,
    "allow_overlap": False,
}
MIN_OFFICIAL_GRID = 10  # smaller grids get target blocks not above min_keep: their collator loops forever
DRAWS = {"official": 1000, "match": 400, "check": 2000}  # batches drawn to estimate mean predicted tokens
TOKENS_TOLERANCE = 0.10  # predicted tokens per image must match the official mean within this fraction
GOALS = {"fast_ratio_vs_official": 1.2, "one_pass_ratio_vs_official": 1.5}
Rounds = list[bench.Timing]  # one path's timings, one per round


class OfficialCodeError(ValueError):
    """The official code cannot be used (not a checkout, or a grid it cannot mask); one line naming why."""


@dataclass(frozen=True)
class OfficialCode:
    """The official modules imported from one checkout, in the order of :data:`OFFICIAL_NAMES`."""

    root: Path
    vit: ModuleType
    multiblock: ModuleType
    mask_utils: ModuleType
    tensors: ModuleType


def official_commit(root: Path) -> str:
    """``git rev-parse HEAD`` in ``root`` if it is a git checkout and git answers, else ``"unknown"``."""
    if not (root / ".git").exists():  # git -C alone would also answer for a repository that contains root
        return "unknown"
    cmd = ["git", "-C", str(root), "rev-parse", "HEAD"]
    try:  # a failing git raises CalledProcessError, a SubprocessError
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_official(directory: str | Path) -> OfficialCode:
    """Imports the modules of :data:`OFFICIAL_NAMES` from ``directory`` (on ``sys.path`` only meanwhile).

    Raises:
        OfficialCodeError: ``directory`` is not a folder or lacks one of their files, the import fails, a
            module comes from elsewhere (another package named ``src``), or lacks one of those names.
    """
    root = Path(directory).expanduser().resolve()
    where = f"--official {directory}"
    if not root.is_dir():
        raise OfficialCodeError(f"{where}: not a directory")
    for path in (f"{name.replace('.', '/')}.py" for name in OFFICIAL_NAMES):
        if not (root / path).is_file():
            raise OfficialCodeError(f"{where}: not a checkout of facebookresearch/ijepa (no {path})")
    sys.path.insert(0, str(root))
    try:
        modules = [importlib.import_module(name) for name in OFFICIAL_NAMES]
    except Exception as exc:  # whatever fails inside third-party code becomes the one-line error
        raise OfficialCodeError(f"{where}: importing the official code failed: {exc!r}") from exc
    finally:
        sys.path.remove(str(root))
    for mod, names in zip(modules, OFFICIAL_NAMES.values(), strict=True):
        if not Path(mod.__file__ or "").resolve().is_relative_to(root):
            raise OfficialCodeError(f"{where}: {mod.__name__} was imported from {mod.__file__}")
        for missing in (n for n in names if not hasattr(mod, n)):
            raise OfficialCodeError(f"{where}: {mod.__name__} has no {missing} (another version?)")
    return OfficialCode(root, *modules)


def official_collator(code: OfficialCode, cfg: Config) -> Any:
    """The official ``MaskCollator`` for this config's image and patch size and number of target blocks."""
    size, patch, npred = cfg.data.image_size, cfg.model.patch_size, cfg.mask.num_targets
    return code.multiblock.MaskCollator(input_size=size, patch_size=patch, npred=npred, **OFFICIAL_MASKS)


class OfficialStepBench:
    """The official models, optimiser and collator, ready to time the official step on a bench's images.

    Args:
        code: The imported official modules.
        cfg: Widths and depths (``model.*``, ``predictor.*``), image size, optimiser and EMA settings.
        images_from: The bench whose images and augmentation are used, with a generator seeded like its own,
            so both see the same crops in the same order.
    """

    def __init__(self, code: OfficialCode, cfg: Config, images_from: bench.StepBench) -> None:
        torch.manual_seed(cfg.train.seed)  # the collator draws block positions from the global generator
        self.code, self.cfg, self.device, self.amp = code, cfg, images_from.device, images_from.amp
        self.images, self.aug = images_from.images, images_from.aug
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        m, p = cfg.model, cfg.predictor
        # The arguments their vit_* and vit_predictor builders fix; widths and depths are this config's.
        common = {"mlp_ratio": m.mlp_ratio, "qkv_bias": True, "norm_layer": partial(nn.LayerNorm, eps=1e-6)}
        chans = bench.CHANNELS.get(cfg.data.name, 3)
        enc = {"img_size": [cfg.data.image_size], "patch_size": m.patch_size, "in_chans": chans}
        self.encoder = code.vit.VisionTransformer(
            **enc, embed_dim=m.embed_dim, depth=m.depth, num_heads=m.num_heads, **common
        )
        pred = {"num_patches": self.encoder.patch_embed.num_patches, "embed_dim": m.embed_dim}
        self.predictor = code.vit.VisionTransformerPredictor(
            **pred, predictor_embed_dim=p.embed_dim, depth=p.depth, num_heads=p.num_heads, **common
        )
        # Their constructors' init; init_model's re-draw of it is left out: weights do not change the cost.
        nets = (self.encoder.to(self.device), self.predictor.to(self.device))
        self.target = copy.deepcopy(self.encoder).requires_grad_(False)
        # Their groups (src/helper.py:init_opt): no weight decay on biases and 1-d parameters.
        decay = [[q for n, q in net.named_parameters() if "bias" not in n and q.ndim != 1] for net in nets]
        rest = [[q for n, q in net.named_parameters() if "bias" in n or q.ndim == 1] for net in nets]
        groups = [{"params": g} for g in decay] + [{"params": g, "weight_decay": 0.0} for g in rest]
        o, betas = cfg.optim, (cfg.optim.beta1, cfg.optim.beta2)
        self.optimizer = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay, betas=betas)
        self.collator = official_collator(code, cfg)
        self.mask_stats: list[dict[str, float]] = []

    def batch(self) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The next augmented batch through the official collator: images, context masks, target masks.

        Records the batch's context size (one for all samples: the collator truncates), its predicted tokens
        per image (the target blocks' sizes summed) and the mean size of their union per image.
        """
        x = self.aug(self.images, self.generator)
        collated, masks_enc, masks_pred = self.collator([(img, 0) for img in x])
        union = torch.zeros(x.shape[0], self.encoder.patch_embed.num_patches, dtype=torch.bool)
        union = union.scatter_(1, torch.cat(masks_pred, dim=1), True).sum(dim=1).double().mean().item()
        context, tokens = (float(sum(m.shape[1] for m in ms)) for ms in (masks_enc, masks_pred))
        stats = {"context_patches_mean": context, "predicted_tokens_mean": tokens}
        self.mask_stats.append({**stats, "target_union_patches_mean": union})
        dev = self.device
        return collated[0].to(dev), [m.to(dev) for m in masks_enc], [m.to(dev) for m in masks_pred]

    def step(self) -> torch.Tensor:
        """One official training step (what is in it and what is not: see the module docstring)."""
        imgs, masks_enc, masks_pred = self.batch()
        apply_masks, tensors = self.code.mask_utils.apply_masks, self.code.tensors
        with torch.autocast(imgs.device.type, dtype=self.amp, enabled=self.amp is not None):
            with torch.no_grad():
                h = self.target(imgs)
                h = F.layer_norm(h, (h.size(-1),))
                # Block-major, each block repeated once per context mask, as the predictor's outputs are.
                h = tensors.repeat_interleave_batch(apply_masks(h, masks_pred), len(h), repeat=len(masks_enc))
            z = self.predictor(self.encoder(imgs, masks_enc), masks_enc, masks_pred)
            loss = F.smooth_l1_loss(z, h)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        m = self.cfg.ema.momentum_start
        with torch.no_grad():  # one update per parameter tensor, as their loop does (this project fuses them)
            for online, target in zip(self.encoder.parameters(), self.target.parameters(), strict=True):
                target.mul_(m).add_((1.0 - m) * online.detach())
        return loss.detach()

    def flops_per_img(self, reps: int = 2) -> float:
        """FLOPs of one official step (the bench's counter), averaged over ``reps`` batches, per image."""
        return sum(bench.count_flops(self.step) for _ in range(reps)) / reps / self.cfg.train.batch_size

    def time_step(self) -> bench.Timing:
        """Wall and CPU seconds of one official step."""
        return bench.timed(self.step, self.device)


class ProjectStepBench(bench.StepBench):
    """A :class:`~jepa_core.bench.StepBench` whose mask stats also hold each batch's predicted tokens per
    image, ``K * T`` (``predicted_tokens_mean``)."""

    def batch(self) -> tuple[torch.Tensor, MaskBatch, Packing]:
        x, masks, packing = super().batch()
        self.mask_stats[-1]["predicted_tokens_mean"] = float(masks.target_idx[0].numel())
        return x, masks, packing


def official_predicted_tokens(code: OfficialCode, cfg: Config, draws: int) -> float:
    """Mean predicted tokens per image of the official collator over its first ``draws`` iterations (their
    block size is seeded by the iteration number); each call collates one dummy sample."""
    collator = official_collator(code, cfg)
    with torch.random.fork_rng():  # their block positions come from the global generator
        sizes = [sum(m.shape[1] for m in collator([(torch.zeros(()), 0)])[2]) for _ in range(draws)]
    return statistics.fmean(sizes)


def project_predicted_tokens(cfg: Config, ratio: float, draws: int, seed: int = 0) -> float:
    """Mean ``K * T`` of this project's sampler for ``cfg.mask`` at ``mask.ratio = ratio``, over ``draws``
    batches (``T`` is drawn per batch)."""
    grid, m = cfg.data.image_size // cfg.model.patch_size, cfg.mask
    sampler = mask_sampler(m, grid, ratio)
    gen = torch.Generator().manual_seed(seed)  # the same seed for every ratio tried: a smoother curve
    return statistics.fmean(sampler(1, gen).target_idx[0].numel() for _ in range(draws))  # K * T each


def match_mask_ratio(cfg: Config, tokens: float, draws: int, iters: int = 12) -> float:
    """The ``mask.ratio`` at which this project's mean predicted tokens per image is ``tokens``: bisection
    on (0.02, 0.95), where they grow with the ratio; 12 halvings leave an interval of about 2e-4."""
    lo, hi = 0.02, 0.95
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if project_predicted_tokens(cfg, mid, draws) < tokens else (lo, mid)
    return round((lo + hi) / 2, 4)


def _comparison_config(cfg: Config, ratio: float | None, one_pass: bool) -> Config:
    """``cfg`` with ``mask.ratio = ratio`` (unless None), smooth-L1 loss and ``predictor.one_pass``."""
    cfg = copy.deepcopy(cfg)
    cfg.mask.ratio = cfg.mask.ratio if ratio is None else ratio
    cfg.loss.kind, cfg.predictor.one_pass = "smooth_l1", one_pass
    return cfg


def _path_summary(ts: Rounds, peaks: Rounds, official: Rounds, flops: float, batch: int) -> dict[str, Any]:
    """One path's figures as ``run_cpu_suite`` reports them, plus its per-round ratios to the official step:
    the official step's time over this path's, median over rounds (above 1: this path is faster)."""
    med, gflop = statistics.median, flops * batch / 1e9
    rounds = list(zip(ts, peaks, official, strict=True))
    return {
        "img_per_s": batch / med(t.wall_s for t in ts),
        "step_s_median": med(t.wall_s for t in ts),
        "flops_per_img": flops,
        "achieved_gflops": med(gflop / t.wall_s for t in ts),
        "fraction_of_peak": med(gflop / t.wall_s / p.wall_s for t, p, _ in rounds),
        "cpu_s_median": med(t.cpu_s for t in ts),
        "fraction_of_peak_cpu_time": med(gflop / t.cpu_s / p.cpu_s for t, p, _ in rounds),
        "ratio_vs_official": med(o.wall_s / t.wall_s for t, _, o in rounds),
        "ratio_vs_official_cpu_time": med(o.cpu_s / t.cpu_s for t, _, o in rounds),
        "step_s": [t.wall_s for t in ts],
    }


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
    ``mask.ratio`` of :func:`match_mask_ratio` (``cfg``'s without ``match_ratio``) and smooth-L1 loss. Returns
    the CPU suite's per-path figures, each with ``ratio_vs_official``, and ``official``, ``mask_match``.

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
    benches: dict[str, Any] = {"official": OfficialStepBench(code, paper, fast), "fast": fast}
    benches["one_pass"] = ProjectStepBench(variant, device)
    benches["naive"] = ProjectStepBench(paper, device, naive_train_step)
    flops = {name: b.flops_per_img(reps=2) for name, b in benches.items()}  # also warms every path up
    for b in benches.values():
        for _ in range(warmup):
            b.step()
        b.mask_stats.clear()
    peak_dtype = torch.bfloat16 if fast.amp is not None else torch.float32
    times: dict[str, Rounds] = {name: [] for name in benches}
    peaks: Rounds = []
    for r in range(rounds):
        for name in list(benches)[:: 1 if r % 2 == 0 else -1]:
            times[name].append(benches[name].time_step())
        peaks.append(bench.matmul_peak_rates(device, peak_dtype, peak_size, reps=2, tries=2))
    batch, med, mean = cfg.train.batch_size, statistics.median, statistics.fmean
    paths = {n: _path_summary(ts, peaks, times["official"], flops[n], batch) for n, ts in times.items()}
    official = {k: v for k, v in paths.pop("official").items() if not k.startswith("ratio_vs_official")}
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
    paths["fast"]["kernels"] = bench.kernel_breakdown(fast, peak)  # draws two more batches: stats taken above
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

    def ratio_of(slow: str, quick: str) -> float:
        return med(s.wall_s / q.wall_s for s, q in zip(times[slow], times[quick], strict=True))

    machine = machine_info.compute(torch.device("cpu"))
    shape = {"batch_size": batch, "image_size": cfg.data.image_size, "num_patches": grid * grid}
    return {
        **{"suite": "cpu", "comparison": "official", **machine, **shape, "rounds": rounds},
        "overrides_for_comparison": {"mask.ratio": paper.mask.ratio, "loss.kind": "smooth_l1"},
        "mask_match": mask_match,
        # This project's masks in the timed steps: each sample's own context, the union of its target
        # blocks, and its predicted tokens K * T (what the official target_patches_mean counts).
        "context_patches_mean": context,
        "target_patches_mean": mean(s["target_patches_mean"] for s in stats),
        "predicted_tokens_mean": mean(s["predicted_tokens_mean"] for s in stats),
        "official": official,
        **paths,
        "speedup": ratio_of("naive", "fast"),
        "one_pass_speedup": ratio_of("fast", "one_pass"),
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_rounds": [p.wall_s for p in peaks],
        "peak_dtype": str(peak_dtype).removeprefix("torch."),
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
        f"on {result['device']} ({result['threads']} threads); predicted tokens/img official "
        f"{off['target_patches_mean']:.0f}, here {result['predicted_tokens_mean']:.0f} (mask.ratio="
        f"{match['mask.ratio']}, long-run mean {match['predicted_tokens_rel_diff']:+.1%}); context official "
        f"{off['context_patches_mean']:.0f} (cut to each batch's smallest), here "
        f"{result['context_patches_mean']:.0f}"
    )
