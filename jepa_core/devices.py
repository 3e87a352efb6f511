"""The training device and its precision: which device ``train.device`` names, and what it computes in.

The precision follows the device type alone (bf16 autocast on CUDA, fp32 elsewhere), which is why a resumed
run must keep the device type of its checkpoint (:func:`jepa_core.resume.check_resumable`).
"""

from __future__ import annotations

import torch

from jepa_core.config import ConfigError


def resolve_device(name: str) -> torch.device:
    """The device ``train.device`` names: ``auto`` is CUDA when available, else the CPU.

    Raises:
        ConfigError: ``name`` asks for CUDA and this machine has none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config key 'train.device' asks for {name} but no CUDA device is available")
    return torch.device(name)


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The training step's autocast dtype on ``device``: bf16 on CUDA, none (fp32) elsewhere."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else None


def precision(device_type: str) -> str:
    """The precision of a step on ``device_type`` in words: ``"bf16 autocast"`` or ``"fp32"``."""
    return "bf16 autocast" if autocast_dtype(device_type) is not None else "fp32"
