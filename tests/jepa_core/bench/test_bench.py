from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import torch

from jepa_core.bench import (
    EXTRA_FLOP_FORMULAS,
    AccuracyClock,
    _op_kind,
    count_flops,
    main,
    time_to_accuracy,
)
from jepa_core.train import EpochReport
from tests.jepa_core.conftest import TINY as TINY_TRAIN

ROOT = Path(__file__).resolve().parents[3]
# A tiny reference_112-shaped model; one thread, because two threads on a shared 2-core machine mostly wait on
# each other at this size.
TINY = [
    "data.image_size=16",
    "model.patch_size=4",
    "model.embed_dim=32",
    "model.depth=2",
    "model.num_heads=2",
    "predictor.depth=2",
    "predictor.embed_dim=16",
    "predictor.num_heads=2",
    "train.batch_size=4",
    "train.num_threads=1",
]
CONTRACT = (
    "img_per_s",
    "context_patches_mean",
    "target_patches_mean",
    "flops_per_img",
    "achieved_gflops",
    "matmul_peak_gflops",
)


def _args(*extra: str) -> list[str]:
    sets = [a for kv in TINY for a in ("--set", kv)]
    return ["--preset", "reference_112", *sets, "--device", "cpu", "--steps", "2", "--warmup", "1", *extra]


def test_bench__prints_contract_fields():
    proc = subprocess.run(
        [sys.executable, "-m", "jepa_core.bench", *_args("--peak-size", "256")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in CONTRACT:
        assert _positive(out[key]), key
    assert out["device"] and out["threads"] == 1
    assert out["predictor_one_pass"] is False  # the paper's predictor unless --set predictor.one_pass=true


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def test_bench__suite_reports_the_three_paths_and_their_ratios(capsys):
    threads = torch.get_num_threads()
    try:  # in-process: the subprocess test above already covers the command line itself
        assert main(_args("--suite", "--peak-size", "256")) == 0
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["suite"] == "cpu"
    assert f"{out['speedup']:.2f}x (goal 1.5x)" in captured.err
    assert f"{out['one_pass_speedup']:.2f}x the fast step (a different model)" in captured.err
    for path in ("fast", "one_pass", "naive"):
        for key in ("img_per_s", "flops_per_img", "achieved_gflops", "fraction_of_peak", "cpu_s_median"):
            assert _positive(out[path][key]), (path, key)
    # The baseline computes every padded token; the variant attends the context once, not once per block.
    assert out["naive"]["flops_per_img"] > out["fast"]["flops_per_img"] > out["one_pass"]["flops_per_img"]
    for key in (
        "speedup",
        "speedup_cpu_time",
        "one_pass_speedup",
        "one_pass_speedup_cpu_time",
        "matmul_peak_gflops",
        "matmul_peak_gflop_per_cpu_s",
    ):
        assert _positive(out[key]), key
    assert out["loss_rel_diff"] < 1e-5  # the baseline computes the fast path's (the paper's) loss
    assert _positive(out["loss_one_pass"])
    assert 0 < out["context_patches_mean"] <= out["num_patches"]
    kernels = out["fast"]["kernels"]
    assert math.isclose(sum(kernels["time_shares"].values()), 1.0)
    assert all(0 < share < 1 for share in kernels["time_shares"].values())
    for key in ("matmul_gflops", "attention_gflops", "attention_share_of_flops", "ceiling_fraction_of_peak"):
        assert _positive(kernels[key]), key


def test_op_kind__sorts_profiler_and_flop_counter_names():
    assert [_op_kind(n) for n in ("aten::mm", "aten.addmm.default", "aten::bmm")] == ["matmul"] * 3
    flash = "aten::_scaled_dot_product_flash_attention_for_cpu_backward"
    assert [_op_kind(n) for n in (flash, "aten._efficient_attention_forward")] == ["attention"] * 2
    others = ("aten::gelu", "aten::copy_", "aten::mmx", "aten.convolution")
    assert [_op_kind(n) for n in others] == ["other"] * 4


def test_count_flops__counts_cpu_flash_attention():
    q = torch.randn(2, 3, 10, 8, requires_grad=True)
    mask = torch.ones(2, 1, 10, 10, dtype=torch.bool)

    def attend() -> None:
        torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask).sum().backward()

    # Each product of two (L x d)-shaped operands costs 2 * B * H * L * L * d: two forward, five backward.
    assert count_flops(attend) == 7 * (2 * 2 * 3 * 10 * 10 * 8)
    assert len(EXTRA_FLOP_FORMULAS) == 2


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
    assert _positive(result["time_to_target_s"]) and 0 <= result["best_probe_acc"] <= 1
