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

The loop itself is :class:`jepa_core.trainer.Trainer`; one step is :func:`jepa_core.step.train_step`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from jepa_core import data as jdata
from jepa_core.checkpoint import CheckpointError, load_checkpoint
from jepa_core.config import Config, ConfigError, build_config, parse_set
from jepa_core.devices import resolve_device
from jepa_core.optim import make_optimizer
from jepa_core.resume import check_resumable
from jepa_core.step import train_step
from jepa_core.trainer import DivergenceError, EpochReport, Trainer

# What train() raises and hands to on_epoch, importable from here; resolve_device, make_optimizer and
# train_step are re-exported for the callers (the bench, the nightly) that import them from this module.
__all__ = [
    "DivergenceError",
    "EpochReport",
    "main",
    "make_optimizer",
    "resolve_device",
    "train",
    "train_step",
]


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
            match the checkpoint's except where :func:`jepa_core.resume.check_resumable` allows.
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
    """``python -m jepa_core.train``: exit 0 trained (the last epoch's metrics as one JSON line on stdout),
    1 a checkpoint that cannot be loaded or a diverged loss, 2 bad input (a refused resume included),
    130 interrupted."""
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
