"""What a sweep will cost before it starts: the trial table and a wall-time estimate (``--dry-run``).

Analytic FLOPs per trial over an effective throughput: on a GPU a constant measured on real runs; on the CPU
the machine at hand's own single-thread matmul rate, measured when the estimate is made, times the fraction of
it a trial achieves (measured on real trials). So the estimate follows the machine: the 2-core AMD EPYC
without AVX-512 and the Intel Xeon with it differ about 2.5x. A rough guide, not a promise. Imports nothing
heavy: the matmul is timed in a child process unless torch is already loaded.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from jepa_core.config import Config, default_val_size
from orchestrator.sweep.plan import SweepPlan

# ---- cost estimate --------------------------------------------------------------------------------
# A one-thread trial's training FLOPs per second over this machine's one-thread matmul rate
# (cpu_thread_gflops), by encoder width: narrow ViTs spend more of their time in memory-bound work (norms,
# softmax, GELU). Measured on the 2-core AMD EPYC (86 GFLOP/s per thread), 1-thread trials 2 at a time:
# 64-wide on the 7 x 7 grid 0.28 (293 img/s), 128-wide on 4 x 4 0.40 (427 img/s), 256-wide on 4 x 4 0.46
# (186 img/s). Interpolated in log2(width), flat outside. And what each further thread adds (fmnist_cpu).
CPU_TRIAL_EFFICIENCY = ((64, 0.28), (128, 0.40), (256, 0.46))
CPU_EXTRA_THREAD_GAIN = 0.5
CPU_FALLBACK_GFLOPS_PER_THREAD = 60.0  # when the matmul cannot be timed: the 2-core AMD EPYC's rate
GPU_TFLOPS = 20.0  # fmnist_gpu alone on one H100 (bf16, torch 2.11): 4.5 s per 60k-image epoch
GPU_SHARING_GAIN = 0.375  # each extra trial sharing the GPU adds this much throughput (3 trials: 1.75x)
TRIAL_SETUP_S = {"cpu": 13.0, "gpu": 25.0}  # worker start, imports (~9 s on 2 cores), MLflow run, data
EVAL_FIXED_S = {"cpu": 0.5, "gpu": 1.5}  # linear probe and kNN fit per evaluation
SWEEP_FIXED_S = 30.0  # Ray start, MLflow set-up, the first workers' imports, the report (measured: 20-35 s)
DATASET_SIZES = {
    "fashion_mnist": (60000, 10000),
    "digits": (1437, 360),
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
    "imagenet": (1281167, 50000),
}


def _encoder_flops(tokens: float, dim: int, depth: int, mlp_ratio: float) -> float:
    # Per block: qkv + proj (4 D^2) and MLP (2 r D^2) matmuls, attention scores and mix (2 n D); x2 per MAC.
    return depth * 2 * (tokens * dim * dim * (4 + 2 * mlp_ratio) + 2 * tokens * tokens * dim)


def _evaluations(cfg: Config) -> int:
    """Evaluations in one trial: every ``eval.every`` epochs and after the last, or once at the end."""
    every = cfg.eval.every
    return 1 if every == 0 else math.ceil(cfg.train.epochs / every)


def trial_flops(cfg: Config) -> tuple[float, float] | None:
    """(training FLOPs, evaluation FLOPs) of one trial, or None for a dataset of unknown size."""
    d, m, p, k = cfg.data, cfg.model, cfg.predictor, cfg.mask
    if d.name not in DATASET_SIZES:
        return None
    n_split, n_test = DATASET_SIZES[d.name]  # the official training split; pretraining may use a subset
    n_train = min(n_split, d.subset or n_split)
    steps = max(1, n_train // cfg.train.batch_size)
    if cfg.train.steps_per_epoch:
        steps = min(steps, cfg.train.steps_per_epoch)
    tokens = (d.image_size // m.patch_size) ** 2
    context = max(k.min_context, tokens * (1 - k.ratio) * (k.context_scale_min + k.context_scale_max) / 2)
    target_enc = _encoder_flops(tokens, m.embed_dim, m.depth, m.mlp_ratio)
    step_img = 3 * _encoder_flops(context, m.embed_dim, m.depth, m.mlp_ratio) + target_enc
    targets = tokens * k.ratio  # patches of all target blocks together
    if p.one_pass:  # the variant: the context and every target block in one masked pass
        step_img += 3 * _encoder_flops(context + targets, p.embed_dim, p.depth, 4.0)
    else:  # the paper's predictor: one pass per block over the context and that block's mask tokens
        blocks = k.num_targets
        step_img += 3 * blocks * _encoder_flops(context + targets / blocks, p.embed_dim, p.depth, 4.0)
    train_flops = cfg.train.epochs * steps * cfg.train.batch_size * step_img
    # Each evaluation encodes the probe's training images and the validation split; the test split once.
    validation = cfg.eval.val_size or default_val_size(n_split)
    per_eval = min(cfg.eval.train_subset, n_split - validation) + validation
    eval_images = max(1, _evaluations(cfg)) * per_eval + (cfg.eval.test_subset or n_test)
    return train_flops, eval_images * target_enc


_TIMING_CODE = "from jepa_core.machine import matmul_thread_gflops; print(matmul_thread_gflops())"
_timing: subprocess.Popen[str] | None = None  # started ahead of need by start_cpu_timing


def start_cpu_timing() -> None:
    """Starts timing this machine's matmul in a child process now, so that :func:`cpu_thread_gflops` later
    only collects the figure. The sweep calls it before Ray starts: the child's 2-3 s (torch's import and the
    timing) then overlap Ray's start instead of delaying the estimate line. The rate counts the child's CPU
    time, not wall time, so waiting for a core while Ray starts does not lower it. Does nothing when torch
    is loaded here already."""
    global _timing
    if _timing is not None or "torch" in sys.modules:
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        _timing = subprocess.Popen(
            [sys.executable, "-c", _TIMING_CODE],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
    except OSError:
        _timing = None


@functools.cache
def cpu_thread_gflops() -> float:
    """This machine's fp32 matmul GFLOP per CPU-second on one thread (``jepa_core.machine``).

    Timed in a child process (about 2 s, torch's import included; started early by
    :func:`start_cpu_timing`, or now) unless torch is loaded here already, so ``--dry-run`` never imports
    torch; ``CPU_FALLBACK_GFLOPS_PER_THREAD`` if that fails.
    """
    if _timing is None and "torch" in sys.modules:
        from jepa_core.machine import matmul_thread_gflops

        return matmul_thread_gflops()
    start_cpu_timing()
    if _timing is None:
        return CPU_FALLBACK_GFLOPS_PER_THREAD
    try:
        out, _ = _timing.communicate(timeout=60)
        return float(out.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        _timing.kill()
        return CPU_FALLBACK_GFLOPS_PER_THREAD
    except (OSError, ValueError, IndexError):
        return CPU_FALLBACK_GFLOPS_PER_THREAD


def cpu_efficiency(width: int) -> float:
    """The fraction of the one-thread matmul rate a trial of this encoder width reaches (interpolated)."""
    points = CPU_TRIAL_EFFICIENCY
    x = math.log2(max(1, width))
    if x <= math.log2(points[0][0]):
        return points[0][1]
    for (w0, e0), (w1, e1) in zip(points, points[1:], strict=False):
        x0, x1 = math.log2(w0), math.log2(w1)
        if x <= x1:
            return e0 + (e1 - e0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def cpu_trial_gflops(threads: float, width: int = 128) -> float:
    """The GFLOP/s a CPU trial with ``threads`` threads and this encoder width achieves on this machine.

    Small ViTs scale poorly across threads (2 threads ran ``fmnist_cpu`` 1.5x faster than 1), so a second
    thread adds ``CPU_EXTRA_THREAD_GAIN`` of the first one's rate.
    """
    extra = max(1, int(threads)) - 1
    return cpu_thread_gflops() * cpu_efficiency(width) * (1 + CPU_EXTRA_THREAD_GAIN * extra)


def trial_seconds(cfg: Config, device: str, cpus: float) -> float | None:
    """Estimated wall seconds of one trial on ``device`` ("cpu" with ``cpus`` threads, or "gpu")."""
    flops = trial_flops(cfg)
    if flops is None:
        return None
    rate = GPU_TFLOPS * 1e12 if device == "gpu" else cpu_trial_gflops(cpus, cfg.model.embed_dim) * 1e9
    return TRIAL_SETUP_S[device] + sum(flops) / rate + _evaluations(cfg) * EVAL_FIXED_S[device]


def local_gpus() -> int:
    """NVIDIA GPUs on this machine, without importing torch (``--dry-run`` must stay fast)."""
    folder = Path("/proc/driver/nvidia/gpus")
    return len(list(folder.iterdir())) if folder.is_dir() else 0


def sweep_estimate(plan: SweepPlan, cpus: float, gpus: float) -> tuple[float | None, str, int]:
    """(estimated wall seconds, device kind, concurrent trials) of the whole sweep on such a machine.

    Mirrors what ``run_sweep`` asks Ray for: a GPU sweep on a machine without GPUs runs on CPU, and a trial
    asking for more CPUs than the machine has gets all of them.
    """
    r, n = plan.resources, plan.num_trials
    use_gpu = r.gpu > 0 and gpus > 0
    threads = max(1.0, min(r.cpu, cpus))
    fits = [int(cpus // threads)] + ([int(gpus // r.gpu)] if use_gpu else [])
    conc = max(1, min(*fits, plan.max_concurrent_trials or n, n))
    device = "gpu" if use_gpu else "cpu"
    rows = plan.trials or [None] * plan.num_trials
    per_trial = []
    for t in rows:
        cfg = plan.trial_config(t.params, t.seed) if t else plan.trial_config({}, plan.spec.seeds[0])
        per_trial.append(trial_seconds(cfg, device, threads))
    if any(s is None for s in per_trial):
        return None, device, conc
    # Trials sharing one GPU overlap imperfectly (measured on an H100: 3 trials give 1.75x one).
    share = conc if device == "cpu" else 1 + (conc - 1) * GPU_SHARING_GAIN
    return SWEEP_FIXED_S + sum(s for s in per_trial if s is not None) / share, device, conc


def fmt_duration(seconds: float) -> str:
    """``45 s``, ``12 min`` or ``2.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---- dry run --------------------------------------------------------------------------------
def trial_table(plan: SweepPlan) -> str:
    """The trial table as aligned text (printed by ``--dry-run``, logged to the parent run as trials.txt).

    Columns: ``#`` (the trial index), ``config_id``, one per swept key, ``seed``. An optuna sweep has no table
    yet: its configurations are suggested while it runs, so this lists the parameters' domains instead.
    """
    import pandas as pd  # here, not at import: the CLI's error paths answer without it

    spec = plan.spec
    if not plan.trials:
        lines = [
            f"{spec.num_samples} configurations suggested by Optuna TPE while the sweep runs, "
            f"x {len(spec.seeds)} seeds = {plan.num_trials} trials"
        ]
        lines += [f"  {p.domain_text()}" for p in spec.parameters]
        return "\n".join(lines)
    keys = spec.swept_keys

    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [[str(t.index), t.config_id, *(cell(t.params[k]) for k in keys), str(t.seed)] for t in plan.trials]
    table = pd.DataFrame(rows, columns=["#", "config_id", *keys, "seed"])
    # Cells are already text: no number parsing, so 0.0001 stays 0.0001 and ids stay as they are.
    return table.to_markdown(index=False, tablefmt="plain", disable_numparse=True, stralign="left")


def cost_summary(plan: SweepPlan, cpus: float, gpus: float) -> str:
    """The ``--dry-run`` summary: method, metric, trials, resources, and the wall-time estimate on this
    machine (and on one H100 for a GPU sweep on a machine without one)."""
    spec = plan.spec
    seconds, device, conc = sweep_estimate(plan, cpus, gpus)
    machine = f"this machine ({cpus:g} CPUs, {gpus} GPUs"
    if device == "cpu":
        machine += f"; matmul {cpu_thread_gflops():.0f} GFLOP/s per thread, timed now"
    machine += ")"
    lines = [
        f"sweep {spec.name}: method {spec.method}, metric {spec.metric} ({spec.goal}), "
        f"{plan.num_trials} trials (profile {plan.profile.name})",
        f"resources per trial: {plan.resources.cpu:g} CPU, {plan.resources.gpu:g} GPU; "
        f"scheduler {spec.scheduler.kind}; max failures per trial {spec.max_failures}",
    ]
    est = "unknown (dataset size not known)" if seconds is None else f"~{fmt_duration(seconds)}"
    lines.append(f"estimated wall time on {machine}: {est} on {device}, {conc} trial(s) at a time")
    if plan.resources.gpu > 0 and gpus == 0:
        gpu_s, _, gpu_conc = sweep_estimate(plan, max(cpus, 16.0), 1)
        if gpu_s is not None:
            lines.append(
                f"estimated wall time on one H100 (16 CPUs): ~{fmt_duration(gpu_s)}, "
                f"{gpu_conc} trials at a time"
            )
    if plan.profile.expected_runtime:
        lines.append(f"expected runtime (sweep file): {plan.profile.expected_runtime}")
    return "\n".join(lines)
