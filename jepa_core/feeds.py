"""What the trainer feeds on: augmented training batches, and the evaluation splits scored each evaluation.

:class:`TrainData` yields the training batches of an epoch, reproducibly from a checkpointed generator;
:class:`EvalData` holds the deterministically preprocessed validation, probe-train and test images of a run
and scores a model's frozen target encoder on them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from jepa_core import data as jdata
from jepa_core.config import Config
from jepa_core.evaluate import evaluate_features, extract_features
from jepa_core.models import IJepa


class TrainData:
    """Training images: a small dataset held whole (on the device when ``data.on_device``), or image folders.

    Batches are augmented on the device with I-JEPA's random resized crop. The batch order and the crops are
    drawn from one CPU generator whose state is checkpointed, so a resumed run sees the same batches.
    """

    def __init__(self, cfg: Config, device: torch.device) -> None:
        d = cfg.data
        self.device, self.batch_size = device, cfg.train.batch_size
        self.folder: jdata.ImageFolderData | None = None
        if d.name in ("imagenet", "imagefolder"):
            self.folder = jdata.ImageFolderData(
                d.root, d.image_size, scale=(d.crop_scale_min, d.crop_scale_max)
            )
            self.num_images = len(self.folder.dataset("train", train=True))
            self.in_chans, self.num_classes = 3, self.folder.num_classes
            return
        self.tensors = jdata.load_tensor_dataset(
            d.name, "train", d.root, subset=d.subset, seed=cfg.train.seed
        )
        if d.on_device:
            self.tensors = self.tensors.to(device)
        self.num_images, self.in_chans = len(self.tensors), self.tensors.images.shape[1]
        self.num_classes = self.tensors.num_classes
        self.aug = jdata.RandomResizedCropAug(
            d.image_size,
            self.tensors.mean,
            self.tensors.std,
            scale=(d.crop_scale_min, d.crop_scale_max),
            hflip=d.hflip,
        )

    def steps_per_epoch(self, limit: int) -> int:
        """Full batches in the dataset, at most ``limit`` when ``limit > 0``."""
        steps = max(1, self.num_images // self.batch_size)
        return min(steps, limit) if limit > 0 else steps

    def batches(
        self, steps: int, generator: torch.Generator, epoch: int, workers: int
    ) -> Iterator[torch.Tensor]:
        """``steps`` augmented batches ``[B, C, H, W]`` on the device, in an order and crops drawn from
        ``generator``."""
        if self.folder is not None:
            loader = self.folder.loader(
                "train",
                self.batch_size,
                train=True,
                workers=workers,
                seed=int(torch.randint(0, 2**31, (1,), generator=generator)),
            )
            for i, (images, _) in enumerate(loader):
                if i >= steps:
                    break
                yield images.to(self.device, non_blocking=True)
            return
        order = torch.randperm(self.num_images, generator=generator)
        for i in range(steps):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size].to(self.tensors.images.device)
            batch = self.tensors.images[idx].to(self.device, non_blocking=True)
            yield self.aug(batch, generator)


class EvalData:
    """Deterministically preprocessed images of the three evaluation splits, prepared once per run.

    Attributes:
        splits: The index sets (:func:`jepa_core.data.eval_splits`): fixed for a dataset and ``eval.*``
            config, whatever ``train.seed``.
        sets: ``(images, labels)`` on the device for each of ``"validation"``, ``"probe_train"``, ``"test"``.
        num_classes: Classes of the dataset (None if it does not say).
    """

    def __init__(self, cfg: Config, device: torch.device) -> None:
        d, ev = cfg.data, cfg.eval
        self.splits = jdata.eval_splits(
            d.name,
            d.root,
            val_size=ev.val_size,
            train_subset=ev.train_subset,
            test_subset=ev.test_subset or None,
        )
        self.sets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for split in jdata.EVAL_SPLITS:
            ds = jdata.eval_split_dataset(d.name, split, d.root, d.image_size, self.splits)
            self.num_classes = int(getattr(ds, "num_classes", 0)) or None
            loader = torch.utils.data.DataLoader(ds, batch_size=ev.batch_size, shuffle=False)
            xs, ys = zip(*loader, strict=True)
            self.sets[split] = (torch.cat(xs).to(device), torch.cat(ys).to(device))

    @torch.no_grad()
    def evaluate(self, model: IJepa, cfg: Config, amp: torch.dtype | None, *, test: bool) -> dict[str, float]:
        """Probe and kNN on validation (and on test if ``test``), fit on the probe-train images.

        ``rankme`` and ``feature_std`` are label-free and computed on the probe-train features.
        """
        model.target.eval()
        start = time.perf_counter()
        feats = {}
        for split in ("probe_train", "validation", "test") if test else ("probe_train", "validation"):
            x, y = self.sets[split]
            with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
                feats[split] = (
                    extract_features(model.target.pooled, x, batch_size=cfg.eval.batch_size).float(),
                    y,
                )
        result = evaluate_features(
            *feats["probe_train"],
            *feats["validation"],
            num_classes=self.num_classes,
            k=cfg.eval.knn_k,
            test=feats.get("test"),
        ).as_metrics()
        result["eval_time_s"] = time.perf_counter() - start
        return result
