from __future__ import annotations

import pathlib

import pytest
import torch

from jepa_core.checkpoint import (
    LEGACY_DEFAULTS,
    CheckpointError,
    ResumeMismatchError,
    checkpoint_config,
    legacy_keys,
    load_checkpoint,
    save_checkpoint,
)
from jepa_core.config import ConfigError, build_config


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: what a hostile checkpoint would do with os.system."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_load_checkpoint__refuses_a_pickle_that_runs_code(tmp_path):
    marker = tmp_path / "code_ran"
    hostile = tmp_path / "checkpoint.pt"
    torch.save({"format_version": 1, "model": _Payload(marker)}, hostile)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_checkpoint(hostile)
    assert not marker.exists()
    # The same file, read the unsafe way, does run the payload: the test above can fail.
    torch.load(hostile, weights_only=False)  # what weights_only=True prevents
    assert marker.exists()


def test_checkpoint_config__missing_one_pass_reads_as_the_variant(tmp_path):
    paper = build_config(overrides=[{"predictor.one_pass": False}]).to_dict()
    assert checkpoint_config({"config": paper}).predictor.one_pass is False  # a recorded value wins
    old = build_config().to_dict()
    del old["predictor"]["one_pass"]  # a checkpoint written before the key existed
    path = save_checkpoint(tmp_path / "old.pt", {"config": old})
    state = load_checkpoint(path)
    assert legacy_keys(state) == ["predictor.one_pass"] and LEGACY_DEFAULTS["predictor.one_pass"] is True
    assert checkpoint_config(state, path).predictor.one_pass is True
    assert legacy_keys({"config": paper}) == []


def test_checkpoint_config__unreadable_config_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="holds no config"):
        checkpoint_config({})
    with pytest.raises(CheckpointError, match="unknown config key 'mask.gone'"):
        checkpoint_config({"config": {"mask": {"gone": 1}}}, "x.pt")


def test_resume_mismatch_error__is_bad_input_not_a_broken_checkpoint():
    assert issubclass(ResumeMismatchError, ConfigError)
    assert not issubclass(ResumeMismatchError, CheckpointError)
