"""Which config may resume which checkpoint: only one that keeps the run's math.

A resumed run continues exactly (same batches, masks and schedules), so the config resuming a checkpoint
must match the one it was trained with, except for the keys in :data:`RESUMABLE_CHANGES` and a
``train.device`` of the same device type. A refusal is one line naming the key, both values and the
``--set`` that continues the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from jepa_core.checkpoint import ResumeMismatchError, checkpoint_config, legacy_keys
from jepa_core.config import Config
from jepa_core.devices import precision_words, resolve_device

# Keys that may differ between a checkpoint and the config resuming it: they never touch the run's math.
# Every other key must match (train.epochs, for one, moves the LR, WD and EMA schedules), except train.device,
# whose device type must match, train.precision, which must resolve to the same precision on it (auto is bf16
# autocast on CUDA, fp32 on CPU), and train.num_threads off the CPU (on the CPU a thread count changes how
# reductions split, and exact continuation is promised).
RESUMABLE_CHANGES = (
    "train.progress",
    "data.root",
    "data.workers",
    "train.checkpoint_every",
)


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
    (``auto`` vs ``cuda``, ``cuda`` vs ``cuda:0``), ``train.precision`` when it resolves to the same precision
    there (``auto`` vs ``bf16`` on CUDA), and ``train.num_threads`` on CUDA. A checkpoint written
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
    saved_precision = precision_words(saved_type, saved.train.precision)
    new_precision = precision_words(device_type, config.train.precision)
    if saved_type != device_type:
        old = f"{saved.train.device} ({saved_type}, {saved_precision})"
        new = f"{config.train.device} ({device_type}, {new_precision})"
        raise ResumeMismatchError(
            f"checkpoint {path} was trained with train.device={old}, this config has train.device={new}: "
            f"resuming would change the run's math (pass --set train.device={saved_type} to continue it)"
        )
    if saved_precision != new_precision:
        old, new = saved.train.precision, config.train.precision
        raise ResumeMismatchError(
            f"checkpoint {path} was trained with train.precision={old} ({saved_precision} on {saved_type}), "
            f"this config has train.precision={new}: resuming would change the run's math "
            f"(pass --set train.precision={old} to continue it)"
        )
    legacy = legacy_keys(state)
    saved_flat = saved.to_flat()
    for key, value in config.to_flat().items():
        old = saved_flat.get(key)
        if old == value or key in RESUMABLE_CHANGES or key in ("train.device", "train.precision"):
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
