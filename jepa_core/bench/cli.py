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

Prints one JSON object on stdout; the suites also print a one-line summary on stderr. Exit 0, or 1 when the
CUDA suite's time-to-accuracy run could not load its data, or 2 on an invalid config or ``--official``.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from jepa_core.bench.cpu_suite import cpu_suite_summary, run_cpu_suite
from jepa_core.bench.cuda_suite import run_cuda_suite
from jepa_core.bench.official_code import OfficialCodeError
from jepa_core.bench.official_suite import official_suite_summary, run_official_suite
from jepa_core.bench.step import run_bench
from jepa_core.config import ConfigError, build_config, parse_set
from jepa_core.train import resolve_device


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_core.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", help="named preset (default fmnist_cpu; with --suite reference_112, vits16_224 on CUDA)"
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
        "checkout of facebookresearch/ijepa, interleaved with this project's "
        "(jepa_core.bench.official_suite)",
    )
    parser.add_argument("--peak-size", type=int, help="matmul-peak side (default 2048 CPU, 8192 CUDA)")
    parser.add_argument("--tta-budget-s", type=float, default=150.0, help="suite on CUDA: training budget")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m jepa_core.bench``: parses ``argv``, runs the bench or a suite, prints its JSON; the exit
    status (see the module docstring)."""
    args = _parser().parse_args(argv)
    try:
        overrides = parse_set(args.overrides)
        if args.device:
            overrides["train.device"] = args.device
        preset = args.preset or ("reference_112" if args.suite else "fmnist_cpu")
        cfg = build_config(preset, args.config, [overrides])
        device = resolve_device(cfg.train.device)
        if args.suite and device.type == "cuda" and args.preset is None:
            cfg = build_config("vits16_224", args.config, [overrides])
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
        try:
            # An explicit --set mask.ratio is kept; otherwise the ratio matching the official masks is used.
            result = run_official_suite(
                cfg, device, args.official, steps, warmup, args.peak_size, "mask.ratio" not in overrides
            )
        except OfficialCodeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(result, indent=1))
        print(official_suite_summary(result), file=sys.stderr)
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
