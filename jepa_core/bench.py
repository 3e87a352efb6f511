"""Throughput benchmark of the I-JEPA training step.

Times full training steps (augmentation, mask sampling, forward, backward, AdamW, EMA) on synthetic images
shaped like the configured dataset, counts the step's FLOPs exactly with torch's FLOP counter, and measures
the matmul peak of the same device in the same run, so achieved/peak is a ratio from one machine state.

    python -m jepa_core.bench --preset fmnist_cpu
    python -m jepa_core.bench --preset reference_112 --device cuda

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from jepa_core.config import Config, ConfigError, build_config, parse_set
from jepa_core.data import RandomResizedCropAug
from jepa_core.masks import BlockMaskSampler, describe
from jepa_core.models import IJepa
from jepa_core.train import param_groups, resolve_device, train_step

CHANNELS = {"fashion_mnist": 1, "digits": 1}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, size: int = 2048, reps: int = 8) -> float:
    """Best-of-three GFLOP/s of a square matmul: the ceiling a dense training step can approach."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(3):
        _sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


class StepBench:
    """A model, optimiser, augmentation and sampler ready to time steps on synthetic data."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        torch.manual_seed(cfg.train.seed)
        self.cfg, self.device = cfg, device
        self.amp = torch.bfloat16 if device.type == "cuda" else None
        chans = CHANNELS.get(cfg.data.name, 3)
        b, s = cfg.train.batch_size, cfg.data.image_size
        self.images = torch.randint(0, 256, (b, chans, s, s), dtype=torch.uint8, device=device)
        self.aug = RandomResizedCropAug(
            s, (0.5,) * chans, (0.25,) * chans, scale=(cfg.data.crop_scale_min, cfg.data.crop_scale_max)
        )
        self.model = IJepa(cfg, chans).to(device)
        if cfg.train.compile:
            self.model.compile_for_training()
        fused = {"fused": True} if device.type == "cuda" else {}
        self.optimizer = torch.optim.AdamW(param_groups(self.model), lr=cfg.optim.lr, **fused)
        grid = self.model.encoder.grid
        m = cfg.mask
        self.sampler = BlockMaskSampler(
            grid,
            grid,
            ratio=m.ratio,
            num_targets=m.num_targets,
            target_aspect=(m.target_aspect_min, m.target_aspect_max),
            context_scale=(m.context_scale_min, m.context_scale_max),
            min_context=m.min_context,
        )
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.mask_stats: list[dict[str, float]] = []

    def step(self) -> torch.Tensor:
        x = self.aug(self.images, self.generator)
        masks = self.sampler(x.shape[0], self.generator)
        self.mask_stats.append(describe(masks, self.model.encoder.num_patches))
        return train_step(
            self.model,
            self.optimizer,
            x,
            masks.to(self.device),
            lr=self.cfg.optim.lr,
            wd=self.cfg.optim.weight_decay,
            momentum=self.cfg.ema.momentum_start,
            loss_kind=self.cfg.loss.kind,
            amp=self.amp,
            grad_clip=self.cfg.optim.grad_clip,
        )

    def flops_per_img(self, reps: int = 4) -> float:
        """Model FLOPs of one step (forward + backward), averaged over a few mask draws, per image."""
        total = 0
        for _ in range(reps):
            with FlopCounterMode(display=False) as counter:
                self.step()
            total += counter.get_total_flops()
        return total / reps / self.cfg.train.batch_size

    def time_steps(self, steps: int, warmup: int) -> list[float]:
        for _ in range(warmup):
            self.step()
        _sync(self.device)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            self.step()
            _sync(self.device)
            times.append(time.perf_counter() - start)
        return times


def run_bench(
    cfg: Config, device: torch.device, steps: int = 10, warmup: int = 3
) -> dict[str, float | str | int]:
    bench = StepBench(cfg, device)
    flops = bench.flops_per_img()
    bench.mask_stats.clear()
    times = bench.time_steps(steps, warmup)
    step_s = statistics.median(times)
    img_per_s = cfg.train.batch_size / step_s
    peak = matmul_peak_gflops(device, torch.bfloat16 if device.type == "cuda" else torch.float32)
    stats = {k: statistics.fmean(s[k] for s in bench.mask_stats) for k in bench.mask_stats[0]}
    achieved = flops * img_per_s / 1e9
    return {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "batch_size": cfg.train.batch_size,
        "image_size": cfg.data.image_size,
        "step_s_median": step_s,
        "img_per_s": img_per_s,
        "context_patches_mean": stats["context_patches_mean"],
        "target_patches_mean": stats["target_patches_mean"],
        "flops_per_img": flops,
        "achieved_gflops": achieved,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": achieved / peak,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jepa_core.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fmnist_cpu", help="named preset (default fmnist_cpu)")
    parser.add_argument("--config", action="append", default=[], metavar="FILE")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: the config's train.device")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        overrides = parse_set(args.overrides)
        if args.device:
            overrides["train.device"] = args.device
        cfg = build_config(args.preset, args.config, [overrides])
        device = resolve_device(cfg.train.device)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    print(json.dumps(run_bench(cfg, device, args.steps, args.warmup), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
