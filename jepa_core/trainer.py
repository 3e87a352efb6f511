"""The training loop of one run: :class:`Trainer` owns the model, optimizer, data and files of a run.

It trains epoch by epoch (:func:`jepa_core.step.train_step` per batch, schedules from the global step),
evaluates every ``eval.every`` epochs and at the last, appends each epoch's metrics to ``metrics.jsonl``,
writes the checkpoint, prints one summary line per epoch and hands an :class:`EpochReport` to ``on_epoch``.
:func:`jepa_core.train.train` is the seam callers use; this module is its machinery.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from jepa_core import machine, schedules
from jepa_core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from jepa_core.config import Config, dump_yaml
from jepa_core.devices import autocast_dtype, fused_attention, resolve_device
from jepa_core.evaluate import collapse_warning
from jepa_core.feeds import EvalData, TrainData
from jepa_core.masks import mask_sampler
from jepa_core.models import build_ijepa
from jepa_core.optim import make_optimizer
from jepa_core.progress import epoch_line
from jepa_core.resume import check_resumable
from jepa_core.step import device_masks, fixed_context_length, train_step


@dataclass
class EpochReport:
    """What the trainer hands to ``on_epoch`` after each epoch (checkpoint already written)."""

    epoch: int  # 1-based; 0 for the random-init evaluation of a ``train.epochs=0`` run
    metrics: dict[str, float]
    checkpoint_path: Path
    # Wall-clock time (``time.time()``) at which this process finished its first training step; None before
    # any step (a ``train.epochs=0`` run). The sweep measures its start-up to the first trial's.
    first_step_at: float | None = None


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite; the run cannot continue."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"loss diverged ({loss}) at epoch {epoch}, step {step}")
        self.epoch, self.step, self.loss = epoch, step, loss


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
        self.amp = autocast_dtype(self.device, cfg.train.precision)
        if self.amp is not None and self.device.type == "cpu" and machine.cpu_native_bf16() is False:
            self.log(
                "warning: train.precision=bf16 on a CPU without bf16 instructions (AVX512-BF16, AMX): torch "
                "emulates them, and the step runs slower than in fp32"
            )
        torch.manual_seed(cfg.train.seed)
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.data = TrainData(cfg, self.device)
        self.eval_data = EvalData(cfg, self.device)
        self.model = build_ijepa(cfg, self.data.in_chans).to(self.device)
        self.model.use_fused_attention(fused_attention(self.device, self.amp))
        if cfg.train.compile:
            self.model.compile_for_training()
        self.optimizer = make_optimizer(self.model, cfg)
        self.sampler = mask_sampler(cfg.mask, self.model.encoder.grid)
        self.fixed_context = fixed_context_length(self.sampler, self.device)
        self.steps_per_epoch = self.data.steps_per_epoch(cfg.train.steps_per_epoch)
        self.total_steps = self.steps_per_epoch * cfg.train.epochs
        self.epoch, self.step, self.elapsed = 0, 0, 0.0
        self.history: list[dict[str, float]] = []
        self.first_step_at: float | None = None

    # ---- checkpoints -------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        """``out_dir/checkpoint.pt``, rewritten in place at each save."""
        return self.out / "checkpoint.pt"

    def save(self) -> Path:
        """Writes the run's whole state (weights, optimizer, step, RNG, config, history) to the checkpoint."""
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
                "device_type": self.device.type,  # with train.precision, what resume checks the precision by
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
        """Trains one epoch and returns its training metrics (``self.epoch`` is advanced by the caller).

        Raises:
            DivergenceError: The loss became NaN or infinite (read back after every step on the CPU,
                every 20th step elsewhere, and as the epoch's mean).
        """
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
            masks, packing = device_masks(host, self.device, self.fixed_context)
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
            if self.first_step_at is None:
                self.first_step_at = time.time()
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
        """Evaluation metrics of the model as it is now, with ``collapsed`` (1.0 when RankMe warns)."""
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
        """Whether epoch ``epoch`` (1-based) is evaluated: every ``eval.every``-th epoch, and the last."""
        every = self.cfg.eval.every
        return epoch >= self.cfg.train.epochs or (every > 0 and epoch % every == 0)

    def run(self, on_epoch: Callable[[EpochReport], bool | None] | None = None) -> dict[str, float]:
        """Trains from ``self.epoch`` to ``train.epochs`` (see :func:`jepa_core.train.train`) and returns the
        last epoch's metrics; ``on_epoch`` returning ``False`` stops after that epoch."""
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
            self.log(epoch_line(final, self.cfg.train.epochs, self.elapsed))
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
        return on_epoch(EpochReport(self.epoch, dict(metrics), self.checkpoint_path, self.first_step_at))

    def _rewrite_metrics_file(self) -> None:
        # On resume the file holds exactly the checkpoint's history: epochs after it are replayed.
        with (self.out / "metrics.jsonl").open("w") as fh:
            for row in self.history:
                fh.write(json.dumps(row) + "\n")
