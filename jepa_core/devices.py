"""The training device and its precision: which device ``train.device`` names, and what it computes in.

``train.precision`` ``auto`` follows the device type (bf16 autocast on CUDA, fp32 elsewhere); ``bf16`` and
``fp32`` name it on any device. A resumed run must keep the precision its checkpoint was trained in
(:func:`jepa_core.resume.check_resumable`).
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


def autocast_dtype(device: torch.device | str, precision: str = "auto") -> torch.dtype | None:
    """The training step's autocast dtype on ``device`` for ``train.precision``: bf16, or None (fp32).

    ``auto`` is bf16 on CUDA and fp32 elsewhere; ``bf16`` and ``fp32`` hold on every device.
    """
    if precision == "auto":
        precision = "bf16" if torch.device(device).type == "cuda" else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


def precision_words(device_type: str, precision: str = "auto") -> str:
    """What a step on ``device_type`` computes in, in words: ``"bf16 autocast"`` or ``"fp32"``."""
    return "bf16 autocast" if autocast_dtype(device_type, precision) is not None else "fp32"


def fused_attention(device: torch.device | str, amp: torch.dtype | None) -> bool:
    """Whether attention should run through ``F.scaled_dot_product_attention`` on ``device`` under ``amp``.

    Not under bf16 on a CPU: there its forward and backward ran 2.6x slower than explicit matmuls and a
    softmax in bf16 (41 against 15.5 ms at batch 64, 3 heads, 100 tokens of 64 dims, 2 threads, AMD EPYC with
    AVX-512, torch 2.14.1), and 1.8x slower than itself in fp32.
    """
    return not (torch.device(device).type == "cpu" and amp == torch.bfloat16)
