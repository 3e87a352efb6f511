from __future__ import annotations

import pathlib

import pytest
import torch

from jepa_core.checkpoint import CheckpointError, load_checkpoint


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
