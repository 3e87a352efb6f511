"""Atomic, safely loadable training checkpoints.

A checkpoint holds the context encoder, predictor, target encoder, optimizer, global step, every RNG state,
the resolved config and the device type it ran on, so a resumed run continues exactly. It is written to a
temporary file in the same folder and renamed into place, so a crash mid-write never leaves a torn file. It is
read with ``torch.load(..., weights_only=True)``: only tensors and plain containers, never arbitrary pickled
objects.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from jepa_core.config import Config, ConfigError, build_config, flatten

FORMAT_VERSION = 1

# Config keys added after checkpoints already existed, with the value a checkpoint written without them was
# trained with (not the key's new default): reading an old checkpoint must never switch its model.
LEGACY_DEFAULTS: dict[str, Any] = {
    # Before the paper's predictor became the default, the only predictor was the one-pass variant.
    "predictor.one_pass": True,
}


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model; never silently ignored."""


class ResumeMismatchError(ConfigError):
    """Resuming would change the run's math (a different schedule, model, precision, ...).

    Bad input rather than a broken checkpoint: the message is one line naming the dotted key, the
    checkpoint's value and the config's, and the ``--set`` that continues the run.
    """


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Writes ``state`` atomically to ``path`` (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format_version": FORMAT_VERSION, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing, unreadable, unsafe or of an unknown format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is reported as one clear error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} cannot be loaded: {first}") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a jepa_core checkpoint (format {FORMAT_VERSION})")
    return state


def legacy_keys(state: dict[str, Any]) -> list[str]:
    """The :data:`LEGACY_DEFAULTS` keys that a loaded checkpoint's saved config lacks."""
    saved = flatten(dict(state.get("config") or {}))
    return [key for key in LEGACY_DEFAULTS if key not in saved]


def checkpoint_config(state: dict[str, Any], path: str | Path = "checkpoint") -> Config:
    """The config a loaded checkpoint was trained with; keys it predates read as :data:`LEGACY_DEFAULTS`.

    Args:
        state: What :func:`load_checkpoint` returned.
        path: The checkpoint's path, for the error message.

    Raises:
        CheckpointError: The saved config is missing or no longer valid.
    """
    saved = state.get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {path} holds no config")
    flat = flatten(saved)
    for key in legacy_keys(state):
        flat[key] = LEGACY_DEFAULTS[key]
    try:
        return build_config(overrides=[flat])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {path} has a config this version cannot read: {exc}") from None


def read_extra_state(path: str | Path) -> dict[str, str]:
    """The caller-owned metadata stored with a checkpoint (e.g. an experiment tracker's run id)."""
    return dict(load_checkpoint(path).get("extra_state") or {})


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a training step may consume."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
