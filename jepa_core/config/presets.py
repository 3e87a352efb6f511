"""Named presets: dotted overrides on the defaults in :mod:`jepa_core.config.schema`.

Each is a real, runnable configuration; ``build_config(preset=NAME)`` applies one below YAML files and
``--set``.
"""

from __future__ import annotations

from typing import Any

# Presets: dotted overrides on the defaults. Each is a real, runnable configuration.
PRESETS: dict[str, dict[str, Any]] = {
    # Width chosen by sweeps/fmnist_recipe_cpu.yaml (256 wide beat 128 wide by 3 points of validation probe
    # at 3 epochs), depth traded for epochs (2 blocks, 7 epochs), batch and learning rate chosen by
    # sweeps/fmnist_steps_cpu.yaml (batch 64 at 7.5e-4 beat 256 at 1.5e-3 by 1.6 points at 3 epochs: the
    # step's img/s barely depends on the batch, so 4x the updates cost little). 13.5 min of training on a
    # 2-vCPU AMD EPYC with AVX-512 (2 threads, about 540 img/s) to 0.834 test (0.836 validation), against
    # 0.801 for raw pixels and 0.762 at random init on the same images (probe fit on 10k training images
    # outside validation, scored on all 10k test images once, after the last epoch). 7 px patches (a 4x4
    # grid) cost a third of 4 px patches per image. Evaluated once, at the end.
    "fmnist_cpu": {
        "data.name": "fashion_mnist",
        "data.image_size": 28,
        "model.patch_size": 7,
        "model.embed_dim": 256,
        "model.depth": 2,
        "model.num_heads": 4,
        "predictor.depth": 3,
        "predictor.embed_dim": 64,
        "predictor.num_heads": 4,
        "mask.ratio": 0.4,
        "optim.lr": 7.5e-4,
        "optim.warmup_epochs": 1,
        "train.epochs": 7,
        "train.batch_size": 64,
        "eval.train_subset": 10000,
        "eval.test_subset": 0,
        "eval.every": 0,
    },
    # One GPU, about 2 minutes on an H100: the whole dataset on the device, larger model, bf16.
    "fmnist_gpu": {
        "data.name": "fashion_mnist",
        "data.image_size": 28,
        "model.patch_size": 4,
        "model.embed_dim": 256,
        "model.depth": 6,
        "model.num_heads": 4,
        "predictor.depth": 4,
        "predictor.embed_dim": 128,
        "predictor.num_heads": 4,
        "mask.ratio": 0.4,
        "optim.lr": 2e-3,
        "optim.warmup_epochs": 2,
        "train.epochs": 20,
        "train.batch_size": 512,
        "eval.train_subset": 60000,
        "eval.every": 5,
    },
    "cifar10_gpu": {
        "data.name": "cifar10",
        "data.image_size": 32,
        "data.hflip": True,
        "model.patch_size": 4,
        "model.embed_dim": 384,
        "model.depth": 12,
        "model.num_heads": 6,
        "predictor.depth": 6,
        "predictor.embed_dim": 192,
        "predictor.num_heads": 6,
        "mask.ratio": 0.4,
        "optim.lr": 1e-3,
        "optim.warmup_epochs": 10,
        "train.epochs": 200,
        "train.batch_size": 512,
        "eval.train_subset": 50000,
        "eval.every": 10,
    },
    # The shape of the reference I-JEPA step at small scale, for benchmarks (synthetic images suffice).
    "reference_112": {
        "data.name": "imagefolder",
        "data.image_size": 112,
        "data.on_device": False,
        "model.patch_size": 8,
        "model.embed_dim": 192,
        "model.depth": 6,
        "model.num_heads": 3,
        "predictor.depth": 6,
        "predictor.embed_dim": 96,
        "predictor.num_heads": 3,
        "mask.num_targets": 4,
        "mask.ratio": 0.45,
        "train.batch_size": 64,
    },
    # The CUDA suite's MFU model (python -m jepa_core.bench --suite on CUDA without --preset): ViT-S/16 at
    # 224 px, encoder 384/12/6 and a predictor half as wide, reference_112's masks, bf16, compiled.
    "vits16_224": {
        "data.name": "imagefolder",
        "data.image_size": 224,
        "data.on_device": False,
        "model.patch_size": 16,
        "model.embed_dim": 384,
        "model.depth": 12,
        "model.num_heads": 6,
        "predictor.depth": 6,
        "predictor.embed_dim": 192,
        "predictor.num_heads": 6,
        "mask.num_targets": 4,
        "mask.ratio": 0.45,
        "train.batch_size": 256,
        "train.compile": True,
    },
    # The paper's ImageNet-1k settings (Assran et al., 2023, appendix): 4 targets of scale 0.15-0.2 whose
    # union covers about 45% of the 14x14 (or 16x16) grid, context block 0.85-1.0, AdamW with lr 1e-3 after a
    # 40-epoch warmup from 1e-4, cosine to 1e-6, weight decay 0.04 -> 0.4, EMA 0.996 -> 1.0, batch 2048.
    "imagenet_vith14": {
        "data.name": "imagenet",
        "data.image_size": 224,
        "data.on_device": False,
        "model.patch_size": 14,
        "model.embed_dim": 1280,
        "model.depth": 32,
        "model.num_heads": 16,
        "predictor.depth": 12,
        "predictor.embed_dim": 384,
        "predictor.num_heads": 12,
        "mask.ratio": 0.45,
        "optim.lr": 1e-3,
        "optim.start_lr": 1e-4,
        "optim.final_lr": 1e-6,
        "optim.warmup_epochs": 40,
        "train.epochs": 300,
        "train.batch_size": 2048,
        "train.compile": True,
        "eval.val_size": 10000,  # 0.8% of ImageNet-1k train: preprocessed images are held in memory
        "eval.every": 10,
    },
    "imagenet_vitb16": {
        "data.name": "imagenet",
        "data.image_size": 224,
        "data.on_device": False,
        "model.patch_size": 16,
        "model.embed_dim": 768,
        "model.depth": 12,
        "model.num_heads": 12,
        "predictor.depth": 6,
        "predictor.embed_dim": 384,
        "predictor.num_heads": 12,
        "mask.ratio": 0.45,
        "optim.lr": 1e-3,
        "optim.start_lr": 1e-4,
        "optim.final_lr": 1e-6,
        "optim.warmup_epochs": 40,
        "train.epochs": 600,
        "train.batch_size": 2048,
        "train.compile": True,
        "eval.val_size": 10000,  # 0.8% of ImageNet-1k train: preprocessed images are held in memory
        "eval.every": 10,
    },
}
