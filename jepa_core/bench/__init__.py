"""Throughput benchmark of the I-JEPA training step.

Times full training steps (augmentation, mask sampling, forward, backward, AdamW, EMA) on synthetic images
shaped like the configured dataset, counts the step's FLOPs exactly with torch's FLOP counter, and measures
the matmul peak of the same device in the same run, so achieved/peak is a ratio from one machine state.

    python -m jepa_core.bench --preset fmnist_cpu
    python -m jepa_core.bench --preset reference_112 --device cuda
    python -m jepa_core.bench --preset fmnist_cpu --set predictor.one_pass=true   # the one-pass variant
    python -m jepa_core.bench --suite                 # CPU: fast step, one-pass variant, naive baseline
    python -m jepa_core.bench --suite --official DIR  # ... and the official step, from a checkout in DIR
    python -m jepa_core.bench --suite --device cuda   # GPU: ViT-S/16 MFU, img/s, fmnist_gpu time to 90%

``--suite`` on the CPU times three steps on the same weights, images and masks: the fast step
(``train.train_step``) with the paper's predictor (Assran et al., 2023); the same step with the one-pass
predictor variant (``predictor.one_pass``, a different model, so a speed comparison only); and the naive
baseline (``naive_step.naive_train_step``), a straightforward implementation of the paper's step written in
this project, not the official code. The three are interleaved step by step with a matmul-peak sample, so that
machine load drifts hit all alike; ratios and fractions of peak are medians over those rounds. Prints one JSON
object.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from jepa_core import machine
from jepa_core.config import Config, ConfigError, build_config, parse_set
from jepa_core.data import DataError, RandomResizedCropAug
from jepa_core.host_sync import SyncCounter
from jepa_core.masks import MaskBatch, mask_sampler, mask_stats
from jepa_core.models import Packing, build_ijepa
from jepa_core.naive_step import naive_loss, naive_train_step
from jepa_core.train import EpochReport, make_optimizer, resolve_device, train, train_step

CHANNELS = {"fashion_mnist": 1, "digits": 1}
StepFn = Callable[..., torch.Tensor]
Shape = tuple[int, ...]


# torch's FLOP counter knows the CUDA attention kernels but not the CPU flash kernel that SDPA dispatches
# to on the CPU; without these the fast path's attention FLOPs would silently count as zero there.
# The counter hands these formulas the shapes of the op's arguments.
def _cpu_flash_flops(q: Shape, k: Shape, v: Shape, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(q, k, v)


def _cpu_flash_backward_flops(grad: Shape, q: Shape, k: Shape, v: Shape, *args: Any, **kwargs: Any) -> int:
    return sdpa_backward_flop_count(grad, q, k, v)


_ATEN = torch.ops.aten
EXTRA_FLOP_FORMULAS = {
    _ATEN._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flops,
    _ATEN._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward_flops,
}

# ViT-S/16 at 224 px (the GPU MFU model): encoder 384/12/6, a predictor half as wide, bf16, compiled.
VITS16_224 = {
    "data.name": "imagefolder",
    "data.image_size": 224,
    "model.patch_size": 16,
    "model.embed_dim": 384,
    "model.depth": 12,
    "model.num_heads": 6,
    "predictor.depth": 6,
    "predictor.embed_dim": 192,
    "predictor.num_heads": 6,
    "train.batch_size": 256,
    "train.compile": True,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timing(NamedTuple):
    """Wall seconds, and this process's CPU seconds over all its threads.

    On a CPU shared with other jobs the wall time grows with their load while the CPU time stays close to
    the work itself, so ratios of CPU times are the steadier cross-check there (meaningless on a GPU).
    """

    wall_s: float
    cpu_s: float


def timed(fn: Callable[[], Any], device: torch.device) -> Timing:
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def matmul_peak_rates(
    device: torch.device, dtype: torch.dtype, size: int | None = None, reps: int = 8, tries: int = 3
) -> Timing:
    """Best-of-``tries`` GFLOP per wall second and per CPU second of a square matmul.

    The default size is 2048 on the CPU and 8192 on a GPU, where smaller products leave the tensor cores idle.
    """
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    gflop = 2 * size**3 * reps / 1e9
    runs = [timed(lambda: [a @ b for _ in range(reps)], device) for _ in range(tries)]
    return Timing(max(gflop / t.wall_s for t in runs), max(gflop / max(t.cpu_s, 1e-9) for t in runs))


def matmul_peak_gflops(
    device: torch.device, dtype: torch.dtype, size: int | None = None, reps: int = 8, tries: int = 3
) -> float:
    """Best-of-``tries`` GFLOP/s of a square matmul: the ceiling a dense training step can approach."""
    return matmul_peak_rates(device, dtype, size, reps, tries).wall_s


def flops_by_op(fn: Callable[[], Any]) -> dict[str, int]:
    """FLOPs of everything ``fn`` runs (forward and backward), by aten operator (``"aten.mm"``, ...), CPU
    flash attention included."""
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
        fn()
    return {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of everything ``fn`` runs (forward and backward), CPU flash attention included."""
    return sum(flops_by_op(fn).values())


class StepBench:
    """A model, optimiser, augmentation and sampler ready to time steps on synthetic data.

    Two benches built from the same config start from identical weights, images and mask draws, whatever
    ``step_fn`` each uses, so their timings compare the step implementations alone.
    """

    def __init__(self, cfg: Config, device: torch.device, step_fn: StepFn = train_step) -> None:
        torch.manual_seed(cfg.train.seed)
        self.cfg, self.device, self.step_fn = cfg, device, step_fn
        self.amp = torch.bfloat16 if device.type == "cuda" else None
        chans = CHANNELS.get(cfg.data.name, 3)
        b, s = cfg.train.batch_size, cfg.data.image_size
        self.images = torch.randint(0, 256, (b, chans, s, s), dtype=torch.uint8, device=device)
        self.aug = RandomResizedCropAug(
            s, (0.5,) * chans, (0.25,) * chans, scale=(cfg.data.crop_scale_min, cfg.data.crop_scale_max)
        )
        # Compiled later (see run_bench): FLOPs are counted on the eager model.
        self.model = build_ijepa(cfg, chans).to(device)
        self.optimizer = make_optimizer(self.model, cfg)  # the trainer's: fused, configured betas
        grid = self.model.encoder.grid
        m = cfg.mask
        self.sampler = mask_sampler(m, grid)
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.mask_stats: list[dict[str, float]] = []

    def batch(self) -> tuple[torch.Tensor, MaskBatch, Packing]:
        """The next augmented batch, its masks and their context packing (built on the host, then moved to
        the device, as the trainer does)."""
        x = self.aug(self.images, self.generator)
        masks = self.sampler(x.shape[0], self.generator)
        self.mask_stats.append(mask_stats(masks, self.model.encoder.num_patches))
        return x, masks.to(self.device), Packing.of(masks.context_valid).to(self.device)

    def step(self) -> torch.Tensor:
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
    peak = matmul_peak_gflops(device, torch.bfloat16 if device.type == "cuda" else torch.float32, peak_size)
    stats = {k: statistics.fmean(s[k] for s in bench.mask_stats) for k in bench.mask_stats[0]}
    achieved = flops * img_per_s / 1e9
    return {
        **machine.compute(device),
        "batch_size": cfg.train.batch_size,
        "image_size": cfg.data.image_size,
        "predictor_one_pass": cfg.predictor.one_pass,
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


MATMUL_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "addbmm"})


def _op_kind(name: str) -> str:
    """``"matmul"``, ``"attention"`` or ``"other"`` for an aten operator (``aten::mm`` or ``aten.mm``)."""
    op = name.removeprefix("aten::").removeprefix("aten.").split(".")[0]
    if op in MATMUL_OPS:
        return "matmul"
    return "attention" if "attention" in op else "other"


def kernel_breakdown(bench: StepBench, peak_gflops: float) -> dict[str, Any]:
    """Where one CPU step's operator time goes, and how fast its matmul and attention kernels run.

    One step runs under the FLOP counter (FLOPs by operator), then the same step again (same mask draw, hence
    the same shapes) under ``torch.profiler`` (self time by operator). ``ceiling_fraction_of_peak`` is the
    fraction of the matmul peak the step would reach if every operator other than the matmuls and the
    attention kernels took no time: the most that removing overhead alone could give on this machine.
    """
    state = bench.generator.get_state()
    flops = {"matmul": 0, "attention": 0, "other": 0}
    for op, n in flops_by_op(bench.step).items():
        flops[_op_kind(op)] += n
    bench.generator.set_state(state)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        bench.step()
    seconds = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            seconds[_op_kind(event.key)] += event.self_cpu_time_total / 1e6
    total_s = sum(seconds.values())
    kernel_s = seconds["matmul"] + seconds["attention"]
    return {
        "operator_s": total_s,
        "time_shares": {k: v / total_s for k, v in seconds.items()},
        "matmul_gflops": flops["matmul"] / 1e9 / max(seconds["matmul"], 1e-9),
        "attention_gflops": flops["attention"] / 1e9 / max(seconds["attention"], 1e-9),
        "attention_share_of_flops": flops["attention"] / max(sum(flops.values()), 1),
        "ceiling_fraction_of_peak": sum(flops.values()) / 1e9 / max(kernel_s, 1e-9) / peak_gflops,
    }


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
    (:func:`kernel_breakdown`).
    """
    paper, variant = _with_one_pass(cfg, False), _with_one_pass(cfg, True)
    benches = {
        "fast": StepBench(paper, device),
        "one_pass": StepBench(variant, device),
        "naive": StepBench(paper, device, naive_train_step),
    }
    agreement = loss_agreement(benches["fast"], benches["one_pass"], benches["naive"])
    flops = {name: b.flops_per_img(reps=2) for name, b in benches.items()}  # also warms every path up
    for b in benches.values():
        b.time_steps(0, warmup)
        b.mask_stats.clear()
    peak_dtype = torch.bfloat16 if benches["fast"].amp is not None else torch.float32
    times: dict[str, list[Timing]] = {name: [] for name in benches}
    peaks: list[Timing] = []
    for r in range(rounds):
        for name in list(benches)[:: 1 if r % 2 == 0 else -1]:
            times[name].append(benches[name].time_step())
        peaks.append(matmul_peak_rates(device, peak_dtype, peak_size, reps=2, tries=2))
    batch = cfg.train.batch_size
    med = statistics.median
    paths: dict[str, dict[str, Any]] = {}
    for name, ts in times.items():
        gflop = flops[name] * batch / 1e9
        paths[name] = {
            "img_per_s": batch / med(t.wall_s for t in ts),
            "step_s_median": med(t.wall_s for t in ts),
            "flops_per_img": flops[name],
            "achieved_gflops": med(gflop / t.wall_s for t in ts),
            "fraction_of_peak": med(gflop / t.wall_s / p.wall_s for t, p in zip(ts, peaks, strict=True)),
            "cpu_s_median": med(t.cpu_s for t in ts),
            "fraction_of_peak_cpu_time": med(
                gflop / t.cpu_s / p.cpu_s for t, p in zip(ts, peaks, strict=True)
            ),
            "step_s": [t.wall_s for t in ts],
        }

    def ratio(slow: str, quick: str, clock: str = "wall_s") -> float:
        """Median over rounds of ``slow``'s step time over ``quick``'s."""
        pairs = zip(times[slow], times[quick], strict=True)
        return med(getattr(s, clock) / getattr(q, clock) for s, q in pairs)

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
        "speedup": ratio("naive", "fast"),
        "speedup_of_medians": paths["fast"]["img_per_s"] / paths["naive"]["img_per_s"],
        "speedup_cpu_time": ratio("naive", "fast", "cpu_s"),
        # What the variant saves over the paper's fast step (a different model: not a like-for-like speedup).
        "one_pass_speedup": ratio("fast", "one_pass"),
        "one_pass_speedup_cpu_time": ratio("fast", "one_pass", "cpu_s"),
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_rounds": [p.wall_s for p in peaks],
        "matmul_peak_gflop_per_cpu_s": med(p.cpu_s for p in peaks),
        "peak_dtype": str(peak_dtype).removeprefix("torch."),
        "goals": {"speedup": 1.5, "fast_fraction_of_peak": 0.7},
    }


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
    """Trains ``preset``, evaluating each epoch, until the probe reaches ``target`` or the budget is spent."""
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
        "goals": {"mfu": 0.4, "time_to_target_s": 120.0},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jepa_core.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", help="named preset (default fmnist_cpu; with --suite reference_112, ViT-S/16 on CUDA)"
    )
    parser.add_argument("--config", action="append", default=[], metavar="FILE")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: the config's train.device")
    parser.add_argument(
        "--steps", type=int, help="timed steps or rounds, median reported (default 10; CPU suite 5)"
    )
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 3; CPU suite 0)")
    parser.add_argument(
        "--suite",
        action="store_true",
        help="the benchmark suite: on the CPU the fast step, its one-pass variant and the naive baseline "
        "(predictor.one_pass is set by the suite), on CUDA MFU and time to accuracy",
    )
    parser.add_argument(
        "--official",
        metavar="DIR",
        help="with --suite on the CPU: also time the official I-JEPA step, imported at run time from DIR, a "
        "checkout of facebookresearch/ijepa, interleaved with this project's (jepa_core.bench.official)",
    )
    parser.add_argument("--peak-size", type=int, help="matmul-peak side (default 2048 CPU, 8192 CUDA)")
    parser.add_argument("--tta-budget-s", type=float, default=150.0, help="suite on CUDA: training budget")
    args = parser.parse_args(argv)
    try:
        overrides = parse_set(args.overrides)
        if args.device:
            overrides["train.device"] = args.device
        preset = args.preset or ("reference_112" if args.suite else "fmnist_cpu")
        cfg = build_config(preset, args.config, [overrides])
        device = resolve_device(cfg.train.device)
        if args.suite and device.type == "cuda" and args.preset is None:
            cfg = build_config(preset, args.config, [VITS16_224, overrides])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    cpu_suite = args.suite and device.type == "cpu"
    if args.official is not None and not cpu_suite:
        print("error: --official needs --suite on the CPU (--device cpu)", file=sys.stderr)
        return 2
    steps = args.steps or (5 if cpu_suite else 10)
    # The CPU suite's FLOP-counting steps (two per path) already warm both paths up; elsewhere the warmup
    # steps also absorb torch.compile.
    warmup = args.warmup if args.warmup is not None else (0 if cpu_suite else 3)
    if args.official is not None:
        # official.py imports this module: loaded here, not at the top
        from jepa_core.bench import official as bench_official

        try:
            # An explicit --set mask.ratio is kept; otherwise the ratio matching the official masks is used.
            result = bench_official.run_official_suite(
                cfg, device, args.official, steps, warmup, args.peak_size, "mask.ratio" not in overrides
            )
        except bench_official.OfficialCodeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(result, indent=1))
        print(bench_official.official_suite_summary(result), file=sys.stderr)
        return 0
    if not args.suite:
        result = run_bench(cfg, device, steps, warmup, args.peak_size)
    elif device.type == "cuda":
        result = run_cuda_suite(cfg, device, steps, warmup, args.tta_budget_s, args.peak_size)
    else:
        result = run_cpu_suite(cfg, device, steps, warmup, args.peak_size)
    print(json.dumps(result, indent=1))
    if result.get("suite") == "cpu":
        print(cpu_suite_summary(result), file=sys.stderr)
    return 1 if "error" in result.get("time_to_accuracy", {}) else 0


def cpu_suite_summary(result: dict[str, Any]) -> str:
    """The CPU suite's verdict in one line, each figure next to its goal."""
    fast, variant, naive, goals = result["fast"], result["one_pass"], result["naive"], result["goals"]
    return (
        f"fast {fast['img_per_s']:.1f} img/s, naive baseline {naive['img_per_s']:.1f}: "
        f"{result['speedup']:.2f}x (goal {goals['speedup']}x); "
        f"one-pass variant {variant['img_per_s']:.1f} img/s, "
        f"{result['one_pass_speedup']:.2f}x the fast step (a different model); fast at "
        f"{fast['fraction_of_peak']:.0%} of the {result['matmul_peak_gflops']:.0f} GFLOP/s matmul peak "
        f"(goal {goals['fast_fraction_of_peak']:.0%}; "
        f"{fast['kernels']['ceiling_fraction_of_peak']:.0%} if only matmul and attention kernels took time)"
    )


if __name__ == "__main__":
    sys.exit(main())
