from __future__ import annotations

import json
import subprocess
import sys

from tests.jepa_core.bench.conftest import ROOT, bench_args, positive

CONTRACT = (
    "img_per_s",
    "context_patches_mean",
    "target_patches_mean",
    "flops_per_img",
    "achieved_gflops",
    "matmul_peak_gflops",
)


def test_bench__prints_contract_fields():
    proc = subprocess.run(
        [sys.executable, "-m", "jepa_core.bench", *bench_args("--peak-size", "256")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in CONTRACT:
        assert positive(out[key]), key
    assert out["device"] and out["threads"] == 1
    assert out["predictor_one_pass"] is False  # the paper's predictor unless --set predictor.one_pass=true


def test_package__imports_without_torch_and_exports_main():
    code = "import sys, jepa_core.bench as b; assert 'torch' not in sys.modules; assert callable(b.main)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
