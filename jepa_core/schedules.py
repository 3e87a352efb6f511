"""Training schedules as pure functions of the global step.

Resuming never replays a generator: the value at step ``s`` depends only on ``s`` and the config, as in
I-JEPA (Assran et al., 2023): linear warmup then cosine learning rate, a cosine weight-decay ramp, and an EMA
momentum ramped linearly from ``momentum_start`` to ``momentum_end`` over the whole run.
"""

from __future__ import annotations

import math


def learning_rate(
    step: int, total_steps: int, warmup_steps: int, start_lr: float, peak_lr: float, final_lr: float
) -> float:
    """Linear warmup from ``start_lr`` to ``peak_lr``, then cosine decay to ``final_lr``."""
    if warmup_steps > 0 and step < warmup_steps:
        return start_lr + (peak_lr - start_lr) * step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return final_lr + 0.5 * (peak_lr - final_lr) * (1.0 + math.cos(math.pi * progress))


def weight_decay(step: int, total_steps: int, start: float, end: float) -> float:
    """Cosine ramp from ``start`` to ``end``: regularise little early, more as training settles."""
    progress = min(1.0, step / max(1, total_steps))
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def ema_momentum(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear ramp from ``start`` to ``end``; the target encoder freezes as momentum approaches 1."""
    progress = min(1.0, step / max(1, total_steps))
    return start + (end - start) * progress
