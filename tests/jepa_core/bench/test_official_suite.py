"""``--suite --official DIR``: the suite runs against a stand-in checkout; what it refuses before that.

CI has neither network nor the official code, so the full run uses a stand-in written here: a few modules
laid out like facebookresearch/ijepa with the same names and calling conventions but trivial models. It
exercises the import from a folder, the official step's plumbing and the JSON; it measures nothing real.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from jepa_core.bench import official_suite
from jepa_core.bench.cli import main

pytestmark = pytest.mark.usefixtures("keep_torch_threads")

# A 10x10 patch grid, the smallest the official collator handles; one thread on the shared CI machine.
TINY = [
    "data.image_size=40",
    "model.patch_size=4",
    "model.embed_dim=32",
    "model.depth=1",
    "model.num_heads=2",
    "predictor.depth=1",
    "predictor.embed_dim=16",
    "predictor.num_heads=2",
    "train.batch_size=4",
    "train.num_threads=1",
]

STAND_IN = {
    "src/masks/utils.py": """
        import torch

        def apply_masks(x, masks):
            return torch.cat([torch.gather(x, 1, m.unsqueeze(-1).expand(-1, -1, x.size(-1))) for m in masks])
    """,
    "src/utils/tensors.py": """
        import torch

        def repeat_interleave_batch(x, B, repeat):
            return torch.cat([x[i * B:(i + 1) * B].repeat(repeat, 1, 1) for i in range(len(x) // B)])
    """,
    "src/masks/multiblock.py": """
        import torch

        class MaskCollator:
            def __init__(self, input_size, patch_size, npred, **settings):
                self.n, self.npred = (input_size // patch_size) ** 2, npred

            def __call__(self, batch):
                perm = torch.stack([torch.randperm(self.n) for _ in batch])
                t = self.n // 8
                pred = [perm[:, i * t:(i + 1) * t] for i in range(self.npred)]
                return torch.utils.data.default_collate(batch), [perm[:, self.npred * t:]], pred
    """,
    "src/models/vision_transformer.py": """
        import torch
        from torch import nn
        from src.masks.utils import apply_masks

        class VisionTransformer(nn.Module):
            def __init__(self, img_size, patch_size, in_chans, embed_dim, **kwargs):
                super().__init__()
                self.patch_embed = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size)
                self.patch_embed.num_patches = (img_size[0] // patch_size) ** 2

            def forward(self, x, masks=None):
                x = self.patch_embed(x).flatten(2).transpose(1, 2)
                return x if masks is None else apply_masks(x, masks)

        class VisionTransformerPredictor(nn.Module):
            def __init__(self, num_patches, embed_dim, predictor_embed_dim, **kwargs):
                super().__init__()
                self.proj = nn.Linear(embed_dim, embed_dim)

            def forward(self, x, masks_x, masks):
                pooled = self.proj(x).mean(1, keepdim=True)
                return torch.cat([pooled.expand(-1, m.shape[1], -1) for m in masks])
    """,
}


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[Path]:
    """The stand-in checkout; its ``src`` modules are dropped from ``sys.modules`` afterwards."""
    for rel, text in STAND_IN.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    yield tmp_path
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]


def _suite(*extra: str) -> list[str]:
    return ["--suite", "--device", "cpu", *[a for kv in TINY for a in ("--set", kv)], *extra]


def test_main__official_without_cpu_suite__exits_2(tmp_path, capsys):
    assert main(["--device", "cpu", "--official", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--official needs --suite" in err


def test_main__official_grid_too_small__exits_2_before_any_collator_runs(stand_in, capsys):
    # The official collator would retry forever on a 5x5 grid: refused before it is even imported.
    assert main(_suite("--official", str(stand_in), "--set", "model.patch_size=8")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "5x5 patch grid" in err and "src" not in sys.modules


def test_main__official_suite_runs_against_a_stand_in_checkout(stand_in, capsys, monkeypatch):
    monkeypatch.setattr(official_suite, "DRAWS", {"official": 20, "match": 20, "check": 50})
    args = _suite("--official", str(stand_in), "--steps", "1", "--peak-size", "128")
    assert main([*args, "--set", "mask.ratio=0.4"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    off = result["official"]
    assert off["commit"] == "unknown" and off["dir"] == str(stand_in.resolve())
    assert off["target_patches_mean"] == 4 * 12 and off["context_patches_mean"] == 100 - 4 * 12
    assert off["img_per_s"] > 0 and off["flops_per_img"] > 0
    for path in ("fast", "one_pass", "naive"):
        assert result[path]["ratio_vs_official"] > 0
    assert result["overrides_for_comparison"] == {"mask.ratio": 0.4, "loss.kind": "smooth_l1"}
    assert result["mask_match"]["matched"] is False  # --set mask.ratio wins over the matching
    assert err.strip().splitlines()[-1].startswith("vs the official I-JEPA step (commit unknown)")
