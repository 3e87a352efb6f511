"""The training step on synthetic images, ready to time: :class:`StepBench`, and :func:`run_bench`, the
default ``python -m jepa_core.bench`` measurement (FLOPs, median img/s, fraction of the matmul peak).

A step here is what the trainer runs per batch: augmentation and mask sampling on the host, then forward,
backward, AdamW and EMA on the device.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from jepa_core import machine
from jepa_core.bench.flops import count_flops
from jepa_core.bench.timing import Timing, matmul_peak_dtype, matmul_peak_gflops, timed
from jepa_core.config import Config
from jepa_core.data import RandomResizedCropAug
from jepa_core.devices import autocast_dtype, fused_attention, precision_words
from jepa_core.host_sync import SyncCounter
from jepa_core.masks import MaskBatch, mask_sampler, mask_stats
from jepa_core.models import Packing, build_ijepa
from jepa_core.optim import make_optimizer
from jepa_core.step import device_masks, fixed_context_length
from jepa_core.train import train_step  # bound through jepa_core.train: tests plant a slower step there

# Channels of the synthetic images per dataset name; every other dataset has 3.
CHANNELS = {"fashion_mnist": 1, "digits": 1}
StepFn = Callable[..., torch.Tensor]


class StepBench:
    """A model, optimiser, augmentation and sampler ready to time steps on synthetic data.

    Two benches built from the same config start from identical weights, images and mask draws, whatever
    ``step_fn`` each uses, so their timings compare the step implementations alone.
    """

    def __init__(self, cfg: Config, device: torch.device, step_fn: StepFn = train_step) -> None:
        torch.manual_seed(cfg.train.seed)
        self.cfg, self.device, self.step_fn = cfg, device, step_fn
        self.amp = autocast_dtype(device, cfg.train.precision)  # the trainer's: train.precision on device
        chans = CHANNELS.get(cfg.data.name, 3)
        b, s = cfg.train.batch_size, cfg.data.image_size
        self.images = torch.randint(0, 256, (b, chans, s, s), dtype=torch.uint8, device=device)
        self.aug = RandomResizedCropAug(
            s, (0.5,) * chans, (0.25,) * chans, scale=(cfg.data.crop_scale_min, cfg.data.crop_scale_max)
        )
        # Compiled later (see run_bench): FLOPs are counted on the eager model.
        self.model = build_ijepa(cfg, chans).to(device)
        self.model.use_fused_attention(fused_attention(device, self.amp))  # as the trainer chooses
        self.optimizer = make_optimizer(self.model, cfg)  # the trainer's: fused, configured betas
        self.sampler = mask_sampler(cfg.mask, self.model.encoder.grid)
        self.fixed_context = fixed_context_length(self.sampler, device)  # as the trainer pads
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.mask_stats: list[dict[str, float]] = []

    def batch(self) -> tuple[torch.Tensor, MaskBatch, Packing]:
        """The next augmented batch, its masks and their context packing (built on the host, then moved to
        the device, as the trainer does: :func:`jepa_core.step.device_masks`)."""
        x = self.aug(self.images, self.generator)
        masks = self.sampler(x.shape[0], self.generator)
        self.mask_stats.append(mask_stats(masks, self.model.encoder.num_patches))
        return x, *device_masks(masks, self.device, self.fixed_context)

    def step(self) -> torch.Tensor:
        """One whole step: :meth:`batch`, then :meth:`device_step` on it."""
        return self.device_step(*self.batch())

    def device_step(self, x: torch.Tensor, masks: MaskBatch, packing: Packing) -> torch.Tensor:
        """The step's device part: loss, backward, AdamW and EMA on a prepared batch."""
        return self.step_fn(
            self.model,
            self.optimizer,
            x,
            masks,
            lr=self.cfg.optim.lr,
            wd=self.cfg.optim.weight_decay,
            momentum=self.cfg.ema.momentum_start,
            loss_kind=self.cfg.loss.kind,
            amp=self.amp,
            grad_clip=self.cfg.optim.grad_clip,
            packing=packing,
        )

    def host_syncs(self) -> int:
        """Host synchronisations in the device part of one step (:class:`jepa_core.host_sync.SyncCounter`)."""
        batch = self.batch()
        with SyncCounter() as counter:
            self.device_step(*batch)
        return counter.total

    def flops_per_img(self, reps: int = 4) -> float:
        """Model FLOPs of one step (forward + backward), averaged over a few mask draws, per image."""
        total = sum(count_flops(self.step) for _ in range(reps))
        return total / reps / self.cfg.train.batch_size

    def time_step(self) -> Timing:
        """Wall and CPU seconds of one step, the device synchronised on both ends."""
        return timed(self.step, self.device)

    def time_steps(self, steps: int, warmup: int) -> list[float]:
        """Wall seconds of ``steps`` steps after ``warmup`` untimed ones."""
        for _ in range(warmup):
            self.step()
        return [self.time_step().wall_s for _ in range(steps)]


def run_bench(
    cfg: Config, device: torch.device, steps: int = 10, warmup: int = 3, peak_size: int | None = None
) -> dict[str, float | str | int]:
    """FLOPs, median img/s and fraction of the matmul peak of the fast step on ``cfg``."""
    bench = StepBench(cfg, device)
    flops = bench.flops_per_img()
    syncs = bench.host_syncs()  # on the eager model: a dispatch mode sees every operator there
    if cfg.train.compile:
        bench.model.compile_for_training()
    bench.mask_stats.clear()
    times = bench.time_steps(steps, warmup)
    step_s = statistics.median(times)
    img_per_s = cfg.train.batch_size / step_s
    peak = matmul_peak_gflops(device, matmul_peak_dtype(bench.amp), peak_size)
    stats = {k: statistics.fmean(s[k] for s in bench.mask_stats) for k in bench.mask_stats[0]}
    achieved = flops * img_per_s / 1e9
    return {
        **machine.compute(device),
        "batch_size": cfg.train.batch_size,
        "image_size": cfg.data.image_size,
        "predictor_one_pass": cfg.predictor.one_pass,
        "precision": precision_words(device.type, cfg.train.precision),
        "step_s_median": step_s,
        "img_per_s": img_per_s,
        "context_patches_mean": stats["context_patches_mean"],
        "target_patches_mean": stats["target_patches_mean"],
        "flops_per_img": flops,
        "achieved_gflops": achieved,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": achieved / peak,
        "host_syncs_per_step": syncs,
    }
