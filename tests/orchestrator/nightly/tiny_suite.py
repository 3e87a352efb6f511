"""The tiny suite the end-to-end nightly tests run, and how they start a night and wait for it.

sklearn's digits, a 1-block ViT, 1 epoch, 2 bench steps, no overhead section: the nights check the plumbing
and the verdict, not speed. Throughput on a shared CI machine swings by several x between runs, so the
suite's img/s tolerance is wide (-90%).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
TINY_MODEL = {
    "data.name": "digits",
    "data.image_size": 8,
    "model.patch_size": 2,
    "model.embed_dim": 32,
    "model.depth": 1,
    "model.num_heads": 2,
    "predictor.depth": 1,
    "predictor.embed_dim": 32,
    "predictor.num_heads": 2,
    "train.batch_size": 64,
}
TINY_SUITE: dict[str, Any] = {
    "experiment": "nightly",
    "bench": {"cpu": {"overrides": TINY_MODEL, "steps": 2, "warmup": 1, "peak_size": 256}},
    "quality": {
        "overrides": {
            **TINY_MODEL,
            "data.subset": 256,
            "train.epochs": 1,
            "train.device": "cpu",
            "eval.train_subset": 200,
            "eval.test_subset": 100,
            "eval.every": 0,
        },
        "seeds": [0],
    },
    "overhead": {"enabled": False},
    "tolerances": {
        "bench_cpu.img_per_s": {"rel": 0.9, "direction": "higher"},
        "quality.probe_acc": {"abs": 0.1, "direction": "higher"},
        "quality.wall_time_s": {"rel": 5.0, "direction": "lower"},
    },
}


def write_yaml(path: Path, body: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def finish(proc: subprocess.Popen, timeout: float = 240) -> subprocess.CompletedProcess:
    """Waits for ``proc`` (killed after ``timeout`` seconds) and returns its output."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
