from __future__ import annotations

import json
import math

from jepa_core.bench.cli import main
from tests.jepa_core.bench.conftest import bench_args, positive


def test_bench__suite_reports_the_three_paths_and_their_ratios(capsys, keep_torch_threads):
    # in-process: test_cli's subprocess test already covers the command line itself
    assert main(bench_args("--suite", "--peak-size", "256")) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["suite"] == "cpu"
    assert f"{out['speedup']:.2f}x (goal 1.5x)" in captured.err
    assert f"{out['one_pass_speedup']:.2f}x the fast step (a different model)" in captured.err
    for path in ("fast", "one_pass", "naive"):
        for key in ("img_per_s", "flops_per_img", "achieved_gflops", "fraction_of_peak", "cpu_s_median"):
            assert positive(out[path][key]), (path, key)
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
        assert positive(out[key]), key
    assert out["loss_rel_diff"] < 1e-5  # the baseline computes the fast path's (the paper's) loss
    assert positive(out["loss_one_pass"])
    assert 0 < out["context_patches_mean"] <= out["num_patches"]
    kernels = out["fast"]["kernels"]
    assert math.isclose(sum(kernels["time_shares"].values()), 1.0)
    assert all(0 < share < 1 for share in kernels["time_shares"].values())
    for key in ("matmul_gflops", "attention_gflops", "attention_share_of_flops", "ceiling_fraction_of_peak"):
        assert positive(kernels[key]), key
