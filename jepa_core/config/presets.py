"""Named presets: dotted overrides on the defaults in :mod:`jepa_core.config.schema`.

Each is a real, runnable configuration; ``build_config(preset=NAME)`` applies one below YAML files and
``--set``.
"""

from __future__ import annotations

from typing import Any

# Presets: dotted overrides on the defaults. Each is a real, runnable configuration.
PRESETS: dict[str, dict[str, Any]] = {
    # Sized with the one-pass predictor variant: 8.6 min on an idle 2-vCPU Intel Xeon, 22 min on a 2-vCPU AMD
    # EPYC, probe 0.814 on 5k test images against 0.797 for raw pixels and 0.709 at random init. With the
    # paper's predictor (the default) it trains in 26.4 min on the AMD machine to 0.808 test (0.813
    # validation), against 0.802 for raw pixels and 0.715 at random init on the same images. 7 px patches
    # (a 4x4 grid) cost a third of 4 px patches per image and learned more per epoch in a grid of 6-epoch
    # runs; the whole training set beat a 30k subset seen twice as often. The probe is fit on 10k training
    # images outside validation, scored on the 6k validation images each evaluation and on 5k test images
    # once, after the last epoch.
    "fmnist_cpu": {
        "data.name": "fashion_mnist",
        "data.image_size": 28,
        "model.patch_size": 7,
        "model.embed_dim": 128,
        "model.depth": 4,
        "model.num_heads": 4,
        "predictor.depth": 3,
        "predictor.embed_dim": 64,
        "predictor.num_heads": 4,
        "mask.ratio": 0.4,
        "optim.lr": 1.5e-3,
        "optim.warmup_epochs": 1,
        "train.epochs": 10,
        "train.batch_size": 256,
        "eval.train_subset": 10000,
        "eval.test_subset": 5000,
        "eval.every": 5,
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
