"""Which config may resume which checkpoint (jepa_core.resume), checked on saved states without training."""

from __future__ import annotations

import pytest
import torch

from jepa_core.checkpoint import ResumeMismatchError
from jepa_core.config import ConfigError, build_config
from jepa_core.resume import check_resumable


def _state(cfg, device_type="cpu"):
    return {"config": cfg.to_dict(), "device_type": device_type}


def _changed(cfg, **sections):
    return build_config(overrides=[cfg.to_dict(), sections])


def test_check_resumable__allows_only_changes_that_keep_the_math(tiny_config, monkeypatch):
    cfg = tiny_config
    free = {"train.progress": True, "data.root": "/elsewhere", "data.workers": 9, "train.checkpoint_every": 5}
    check_resumable(_state(cfg), _changed(cfg, **free), "ckpt")
    for key, value in {
        "train.epochs": 99,
        "train.num_threads": 1,
        "optim.lr": 0.5,
        "eval.val_size": 10,
    }.items():
        with pytest.raises(ResumeMismatchError) as caught:
            check_resumable(_state(cfg), _changed(cfg, **{key: value}), "ckpt")
        message = str(caught.value)
        old = cfg.to_flat()[key]
        assert f"{key}={old}" in message and f"{key}={value}" in message and f"--set {key}={old}" in message
        assert "\n" not in message and isinstance(caught.value, ConfigError)
    # On CUDA the device string may change as long as it stays CUDA (same bf16 precision); threads may too.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_cuda = _changed(cfg, **{"train.device": "cuda"})
    for device in ("cuda:0", "auto"):
        check_resumable(_state(on_cuda, "cuda"), _changed(on_cuda, **{"train.device": device}), "ckpt")
    check_resumable(_state(on_cuda, "cuda"), _changed(on_cuda, **{"train.num_threads": 3}), "ckpt")
    with pytest.raises(ResumeMismatchError, match=r"train\.device=cpu \(cpu, fp32\).*cuda, bf16 autocast"):
        check_resumable(_state(cfg), on_cuda, "ckpt")
    with pytest.raises(ResumeMismatchError, match="train.device=auto"):  # auto trained on CUDA, now the CPU
        check_resumable(_state(_changed(cfg, **{"train.device": "auto"}), "cuda"), cfg, "ckpt")


def test_check_resumable__keeps_the_precision_not_the_word_for_it(tiny_config, monkeypatch):
    cfg = tiny_config  # trained on the CPU with train.precision=auto: fp32
    check_resumable(_state(cfg), _changed(cfg, **{"train.precision": "fp32"}), "ckpt")
    with pytest.raises(ResumeMismatchError) as caught:
        check_resumable(_state(cfg), _changed(cfg, **{"train.precision": "bf16"}), "ckpt")
    message = str(caught.value)
    assert "train.precision=auto (fp32 on cpu)" in message and "--set train.precision=auto" in message
    assert "\n" not in message
    # On CUDA auto is bf16: naming it keeps the math, asking for fp32 does not.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_cuda = _changed(cfg, **{"train.device": "cuda"})
    check_resumable(_state(on_cuda, "cuda"), _changed(on_cuda, **{"train.precision": "bf16"}), "ckpt")
    with pytest.raises(ResumeMismatchError, match=r"train\.precision=auto \(bf16 autocast on cuda\)"):
        check_resumable(_state(on_cuda, "cuda"), _changed(on_cuda, **{"train.precision": "fp32"}), "ckpt")
