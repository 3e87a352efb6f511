"""The I-JEPA training loop, as a library function and a command line.

``train(config, out_dir, on_epoch=...)`` trains, evaluates every ``eval.every`` epochs, writes
``out_dir/{config.yaml, metrics.jsonl, checkpoint.pt}`` and hands each epoch's metrics and checkpoint path to
``on_epoch``. It knows nothing of Ray or MLflow: the orchestrator wraps it. Each epoch ends with one
summary line on stderr (metrics and the run's ETA); a per-step bar runs within the epoch only when stderr is
a terminal.

Each evaluation fits a linear probe and a kNN bank on training images outside the validation split and
scores the validation split (``probe_acc``, ``knn_acc``); the last scheduled epoch also scores the official
test split with the same probe and bank (``test_probe_acc``, ``test_knn_acc``). See
:func:`jepa_core.data.eval_splits`.

    python -m jepa_core.train --preset fmnist_cpu --out runs/fmnist
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from jepa_core import data as jdata
from jepa_core import schedules
from jepa_core.checkpoint import (
    CheckpointError,
    ResumeMismatchError,
    checkpoint_config,
    legacy_keys,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from jepa_core.config import Config, ConfigError, build_config, dump_yaml, parse_set
from jepa_core.evaluate import collapse_warning, evaluate_features, extract_features
from jepa_core.masks import MaskBatch, mask_sampler
from jepa_core.models import IJepa, Packing, build_ijepa
from jepa_core.optim import make_optimizer

# Keys that may differ between a checkpoint and the config resuming it: they never touch the run's math.
# Every other key must match (train.epochs, for one, moves the LR, WD and EMA schedules), except train.device,
# whose device type, hence precision, must match (bf16 autocast on CUDA, fp32 on CPU), and train.num_threads
# off the CPU (on the CPU a thread count changes how reductions split, and exact continuation is promised).
RESUMABLE_CHANGES = (
    "train.progress",
    "data.root",
    "data.workers",
    "train.checkpoint_every",
)


@dataclass
class EpochReport:
    """What the trainer hands to ``on_epoch`` after each epoch (checkpoint already written)."""

    epoch: int  # 1-based; 0 for the random-init evaluation of a ``train.epochs=0`` run
    metrics: dict[str, float]
    checkpoint_path: Path


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite; the run cannot continue."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"loss diverged ({loss}) at epoch {epoch}, step {step}")
        self.epoch, self.step, self.loss = epoch, step, loss


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config key 'train.device' asks for {name} but no CUDA device is available")
    return torch.device(name)


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The training step's autocast dtype on ``device``: bf16 on CUDA, none (fp32) elsewhere."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else None


def _precision(device_type: str) -> str:
    return "bf16 autocast" if autocast_dtype(device_type) is not None else "fp32"


def _set_value(value: Any) -> str:
    """``value`` as ``--set KEY=VALUE`` spells it (a YAML scalar)."""
    return value if isinstance(value, str) else json.dumps(value)


def _saved_device_type(state: dict[str, Any], saved: Config) -> str:
    """The device type a checkpoint was trained on (recorded since resume checks it; else from its config)."""
    recorded = state.get("device_type")
    if isinstance(recorded, str):
        return recorded
    # Older checkpoints: an explicit device says it; "auto" is taken to have resolved as it does here.
    name = saved.train.device
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name).type


def check_resumable(state: dict[str, Any], config: Config, path: str | Path) -> None:
    """Refuses to resume a checkpoint with a config that would change the run's math.

    Allowed to differ: :data:`RESUMABLE_CHANGES`, ``train.device`` when it resolves to the same device type
    (``auto`` vs ``cuda``, ``cuda`` vs ``cuda:0``), and ``train.num_threads`` on CUDA. A checkpoint written
    before a key existed is read with that key's :data:`jepa_core.checkpoint.LEGACY_DEFAULTS` value.

    Args:
        state: A loaded checkpoint.
        config: The config that would resume it.
        path: The checkpoint's path, for the message.

    Raises:
        ResumeMismatchError: One line naming the first offending key, both values and the ``--set`` to use.
        CheckpointError: The checkpoint's config cannot be read.
        ConfigError: ``train.device`` names a device this machine lacks.
    """
    saved = checkpoint_config(state, path)
    saved_type = _saved_device_type(state, saved)
    device_type = resolve_device(config.train.device).type
    if saved_type != device_type:
        old = f"{saved.train.device} ({saved_type}, {_precision(saved_type)})"
        new = f"{config.train.device} ({device_type}, {_precision(device_type)})"
        raise ResumeMismatchError(
            f"checkpoint {path} was trained with train.device={old}, this config has train.device={new}: "
            f"resuming would change the run's math (pass --set train.device={saved_type} to continue it)"
        )
    legacy = legacy_keys(state)
    saved_flat = saved.to_flat()
    for key, value in config.to_flat().items():
        old = saved_flat.get(key)
        if old == value or key in RESUMABLE_CHANGES or key == "train.device":
            continue
        if key == "train.num_threads" and device_type != "cpu":
            continue
        if key in legacy:
            raise ResumeMismatchError(
                f"checkpoint {path} predates {key} and was trained with {key}={_set_value(old)}, this config "
                f"has {key}={_set_value(value)}: pass --set {key}={_set_value(old)} to continue it"
            )
        raise ResumeMismatchError(
            f"checkpoint {path} was trained with {key}={_set_value(old)}, this config has "
            f"{key}={_set_value(value)}: resuming would change the run's math "
            f"(pass --set {key}={_set_value(old)} to continue it)"
        )


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
        steps = max(1, self.num_images // self.batch_size)
        return min(steps, limit) if limit > 0 else steps

    def batches(
        self, steps: int, generator: torch.Generator, epoch: int, workers: int
    ) -> Iterator[torch.Tensor]:
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


def train_step(
    model: IJepa,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: MaskBatch,
    *,
    lr: float,
    wd: float,
    momentum: float,
    loss_kind: str,
    amp: torch.dtype | None,
    grad_clip: float,
    loss_fn: Callable[[IJepa, torch.Tensor, MaskBatch, str], torch.Tensor] | None = None,
    packing: Packing | None = None,
) -> torch.Tensor:
    """One optimisation step: I-JEPA loss, AdamW update of encoder and predictor, EMA of the target.

    With ``packing`` built on the host (``Packing.of(host_masks.context_valid).to(device)``) and the optimizer
    from :func:`make_optimizer`, the step reads nothing back from the device: no host synchronisation
    (``tests/jepa_core/test_host_sync.py`` counts them).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group["apply_wd"]:
            group["weight_decay"] = wd
    with torch.autocast(images.device.type, dtype=amp, enabled=amp is not None):
        if loss_fn is None:
            loss = model.loss(
                images, masks.context_idx, masks.context_valid, masks.target_idx, loss_kind, packing
            )
        else:  # e.g. the naive baseline step (jepa_core.naive_step), for benchmarks
            loss = loss_fn(model, images, masks, loss_kind)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    optimizer.step()
    model.update_target(momentum)
    return loss.detach()


class Trainer:
    """Owns one run: model, optimiser, data, sampler, and the files under ``out_dir``."""

    def __init__(
        self,
        cfg: Config,
        out_dir: str | Path,
        *,
        progress: bool | None = None,
        extra_state: dict[str, str] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg, self.out = cfg, Path(out_dir)
        # The bar only on a terminal: redirected to a file, its carriage-return updates bury the epoch lines.
        self.progress = (cfg.train.progress if progress is None else progress) and sys.stderr.isatty()
        self.extra_state = dict(extra_state or {})
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        if cfg.train.num_threads > 0:
            torch.set_num_threads(cfg.train.num_threads)
        self.device = resolve_device(cfg.train.device)
        self.amp = autocast_dtype(self.device)
        torch.manual_seed(cfg.train.seed)
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.data = TrainData(cfg, self.device)
        self.eval_data = EvalData(cfg, self.device)
        self.model = build_ijepa(cfg, self.data.in_chans).to(self.device)
        if cfg.train.compile:
            self.model.compile_for_training()
        self.optimizer = make_optimizer(self.model, cfg)
        grid = self.model.encoder.grid
        m = cfg.mask
        self.sampler = mask_sampler(m, grid)
        self.steps_per_epoch = self.data.steps_per_epoch(cfg.train.steps_per_epoch)
        self.total_steps = self.steps_per_epoch * cfg.train.epochs
        self.epoch, self.step, self.elapsed = 0, 0, 0.0
        self.history: list[dict[str, float]] = []

    # ---- checkpoints -------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save(self) -> Path:
        m = self.model
        return save_checkpoint(
            self.checkpoint_path,
            {
                "encoder": m.encoder.state_dict(),
                "predictor": m.predictor.state_dict(),
                "target": m.target.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch,
                "step": self.step,
                "elapsed_s": self.elapsed,
                "in_chans": self.data.in_chans,
                "device_type": self.device.type,  # resume refuses another type: it changes the precision
                "rng": rng_state(self.generator),
                "config": self.cfg.to_dict(),
                "history": self.history,
                "extra_state": self.extra_state,
            },
        )

    def restore(self, path: str | Path) -> None:
        """Continue from the checkpoint at ``path`` (see :func:`check_resumable` for what may differ)."""
        state = load_checkpoint(path)
        check_resumable(state, self.cfg, path)
        self.load_state(state, path)

    def load_state(self, state: dict[str, Any], path: str | Path) -> None:
        """Load a checkpoint already accepted by :func:`check_resumable` (``path`` names it in errors)."""
        try:
            self.model.encoder.load_state_dict(state["encoder"])
            self.model.predictor.load_state_dict(state["predictor"])
            self.model.target.load_state_dict(state["target"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {path} does not fit this model: {str(exc).splitlines()[0]}"
            ) from None
        restore_rng_state(state["rng"], self.generator)
        self.epoch, self.step, self.elapsed = (
            int(state["epoch"]),
            int(state["step"]),
            float(state["elapsed_s"]),
        )
        self.history = [dict(h) for h in state["history"]]
        self.extra_state = {**dict(state.get("extra_state") or {}), **self.extra_state}

    # ---- the loop ------------------------------------------------------------------------------------
    def run_epoch(self) -> dict[str, float]:
        cfg, o = self.cfg, self.cfg.optim
        self.model.train()
        epoch = self.epoch + 1
        warmup = round(o.warmup_epochs * self.steps_per_epoch)
        loss_sum = torch.zeros((), device=self.device)
        ctx_sum = tgt_sum = 0.0
        # CUDA runs ahead of the host: read the loss back only every few steps there.
        sync_every = 1 if self.device.type == "cpu" else 20
        bar = tqdm(
            total=self.steps_per_epoch,
            desc=f"epoch {epoch}/{cfg.train.epochs}",
            unit="step",
            disable=not self.progress,
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        start = time.perf_counter()
        n_steps = 0
        for images in self.data.batches(self.steps_per_epoch, self.generator, epoch, cfg.data.workers):
            # Mask statistics and the context packing come from the host masks, before they move: the device
            # part of the step then never waits for the host.
            host = self.sampler(images.shape[0], self.generator)
            ctx_sum += float(host.context_valid.sum()) / images.shape[0]
            packing = Packing.of(host.context_valid).to(self.device)
            masks = host.to(self.device)
            s = self.step
            loss = train_step(
                self.model,
                self.optimizer,
                images,
                masks,
                lr=schedules.learning_rate(s, self.total_steps, warmup, o.start_lr, o.lr, o.final_lr),
                wd=schedules.weight_decay(s, self.total_steps, o.weight_decay, o.weight_decay_end),
                momentum=schedules.ema_momentum(
                    s, self.total_steps, cfg.ema.momentum_start, cfg.ema.momentum_end
                ),
                loss_kind=cfg.loss.kind,
                amp=self.amp,
                grad_clip=o.grad_clip,
                packing=packing,
            )
            loss_sum += loss
            tgt_sum += masks.target_idx.shape[1] * masks.target_idx.shape[2]
            self.step += 1
            n_steps += 1
            if n_steps % sync_every == 0 or n_steps == self.steps_per_epoch:
                value = float(loss)
                if not math.isfinite(value):
                    raise DivergenceError(epoch, self.step, value)
                bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            bar.update(1)
        bar.close()
        mean_loss = float(loss_sum) / max(1, n_steps)
        if not math.isfinite(mean_loss):
            raise DivergenceError(epoch, self.step, mean_loss)
        train_time = time.perf_counter() - start
        s = max(0, self.step - 1)
        return {
            "train_loss": mean_loss,
            "img_per_s": n_steps * self.data.batch_size / train_time,
            "epoch_time_s": train_time,
            "lr": schedules.learning_rate(s, self.total_steps, warmup, o.start_lr, o.lr, o.final_lr),
            "ema_momentum": schedules.ema_momentum(
                s, self.total_steps, cfg.ema.momentum_start, cfg.ema.momentum_end
            ),
            "context_patches_mean": ctx_sum / max(1, n_steps),
            "target_block_patches_mean": tgt_sum / max(1, n_steps),
        }

    def evaluate(self) -> dict[str, float]:
        # The test split is scored once, at the last scheduled epoch (epoch 0 of a train.epochs=0 run).
        final = self.epoch >= self.cfg.train.epochs
        metrics = self.eval_data.evaluate(self.model, self.cfg, self.amp, test=final)
        warning = collapse_warning(
            metrics["rankme"], self.cfg.model.embed_dim, self.cfg.eval.collapse_threshold
        )
        metrics["collapsed"] = 1.0 if warning else 0.0
        if warning:
            self.log(f"warning: epoch {self.epoch}: {warning}")
        return metrics

    def should_eval(self, epoch: int) -> bool:
        every = self.cfg.eval.every
        return epoch >= self.cfg.train.epochs or (every > 0 and epoch % every == 0)

    def run(self, on_epoch: Callable[[EpochReport], bool | None] | None = None) -> dict[str, float]:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(dump_yaml(self.cfg))
        self._rewrite_metrics_file()
        if self.cfg.train.epochs == 0:  # the random-init reference point
            metrics = {"epoch": 0, **self.evaluate()}
            return self._finish_epoch(metrics, on_epoch, force_save=True) or metrics
        final: dict[str, float] = dict(self.history[-1]) if self.history else {}
        while self.epoch < self.cfg.train.epochs:
            wall = time.perf_counter()
            metrics = self.run_epoch()
            self.epoch += 1
            if self.should_eval(self.epoch):
                metrics.update(self.evaluate())
            self.elapsed += time.perf_counter() - wall
            final = {"epoch": self.epoch, **metrics, "wall_time_s": self.elapsed}
            eta = eta_seconds(self.elapsed, self.epoch, self.cfg.train.epochs)
            self.log(f"{_summary(final, self.cfg.train.epochs)} | eta {format_duration(eta)}")
            if self._finish_epoch(final, on_epoch) is False:
                break
        return final

    def release(self) -> None:
        """Drops the model, optimiser and data. An exception raised through :meth:`run` (a failure, or a
        scheduler stopping the run inside ``on_epoch``) keeps this trainer alive in its traceback; without
        this, a worker that runs trial after trial would hold the previous trial's memory meanwhile."""
        for name in ("model", "optimizer", "data", "eval_data", "sampler"):
            self.__dict__.pop(name, None)

    def _finish_epoch(
        self,
        metrics: dict[str, float],
        on_epoch: Callable[[EpochReport], bool | None] | None,
        force_save: bool = False,
    ) -> bool | None:
        self.history.append(metrics)
        with (self.out / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(metrics) + "\n")
        last = self.epoch >= self.cfg.train.epochs
        if force_save or last or self.epoch % self.cfg.train.checkpoint_every == 0:
            self.save()
        if on_epoch is None:
            return None
        return on_epoch(EpochReport(self.epoch, dict(metrics), self.checkpoint_path))

    def _rewrite_metrics_file(self) -> None:
        # On resume the file holds exactly the checkpoint's history: epochs after it are replayed.
        with (self.out / "metrics.jsonl").open("w") as fh:
            for row in self.history:
                fh.write(json.dumps(row) + "\n")


def eta_seconds(elapsed: float, done: int, total: int) -> float:
    """Time left for the run's remaining epochs at the mean wall time (training and evaluation) of the
    ``done`` epochs so far; a resumed run counts the epochs of its checkpoint too."""
    return elapsed / max(1, done) * max(0, total - done)


def format_duration(seconds: float) -> str:
    """``45s``, ``4m12s`` or ``2h05m``: short enough for a log line, as precise as an estimate deserves."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _summary(m: dict[str, float], epochs: int) -> str:
    parts = [
        f"epoch {int(m['epoch'])}/{epochs}",
        f"loss {m['train_loss']:.4f}",
        f"{m['img_per_s']:.0f} img/s",
        f"{m['epoch_time_s']:.1f} s",
    ]
    if "probe_acc" in m:
        parts += [
            f"val probe {m['probe_acc']:.4f}",
            f"val knn {m['knn_acc']:.4f}",
            f"rankme {m['rankme']:.1f}",
        ]
    if "test_probe_acc" in m:
        parts += [f"test probe {m['test_probe_acc']:.4f}", f"test knn {m['test_knn_acc']:.4f}"]
    return " | ".join(parts)


def train(
    config: Config,
    out_dir: str | Path,
    *,
    on_epoch: Callable[[EpochReport], bool | None] | None = None,
    resume_from: str | Path | None = None,
    progress: bool | None = None,
    extra_state: dict[str, str] | None = None,
) -> dict[str, float]:
    """Trains an I-JEPA model and returns the last epoch's metrics.

    Args:
        config: A validated :class:`Config`.
        out_dir: Folder for ``config.yaml``, ``metrics.jsonl`` and ``checkpoint.pt``.
        on_epoch: Called after each epoch with its metrics and the (already written) checkpoint path;
            returning ``False`` stops training after that epoch (early stopping; the test split, scored only
            at the last scheduled epoch, is then never scored).
        resume_from: A checkpoint to continue exactly (same batches, masks and schedules); the config must
            match the checkpoint's except where :func:`check_resumable` allows.
        progress: Show the per-step progress bar when stderr is a terminal (default: ``train.progress``);
            the one-line summary of each epoch, with its ETA, is printed to stderr either way.
        extra_state: Caller metadata stored in every checkpoint (e.g. a tracker's run id).

    Raises:
        DivergenceError: The loss became NaN or infinite.
        CheckpointError: ``resume_from`` cannot be loaded or does not fit the model.
        ResumeMismatchError: ``config`` would change the math of the run in ``resume_from`` (a ConfigError).
        jepa_core.data.DataError: The dataset cannot be found.
    """
    state = None
    if resume_from is not None:
        # Checked before the trainer loads data and builds the model: a refused resume fails in a second.
        state = load_checkpoint(resume_from)
        check_resumable(state, config, resume_from)
    trainer = Trainer(config, out_dir, progress=progress, extra_state=extra_state)
    try:
        if state is not None:
            trainer.load_state(state, resume_from)
        return trainer.run(on_epoch)
    finally:
        trainer.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jepa_core.train", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", action="append", default=[], metavar="FILE", help="YAML overrides (repeatable)"
    )
    parser.add_argument("--preset", help="named preset, e.g. fmnist_cpu")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one dotted config key (applied last, repeatable)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    parser.add_argument("--overwrite", action="store_true", help="start over even if DIR holds a checkpoint")
    args = parser.parse_args(argv)
    try:
        cfg = build_config(args.preset, args.config, [parse_set(args.overrides)])
        ckpt = Path(args.out) / "checkpoint.pt"
        if args.resume and not ckpt.exists():
            raise ConfigError(f"--resume: {ckpt} does not exist")
        if ckpt.exists() and not (args.resume or args.overwrite):
            raise ConfigError(
                f"{args.out} already holds a checkpoint: pass --resume to continue it "
                "or --overwrite to start over"
            )
        final = train(cfg, args.out, resume_from=ckpt if args.resume else None)
    except (ConfigError, jdata.DataError) as exc:
        # Bad input, exit 2; a refused resume is one too (ResumeMismatchError is a ConfigError).
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CheckpointError, DivergenceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: resume with --resume --out {args.out}", file=sys.stderr)
        return 130
    print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in final.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
