"""Tests for jepa_core.data.files: the sha256-verified, atomic download."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from jepa_core import data
from jepa_core.data.files import download


def test_download__sha256_mismatch_rejected_and_nothing_left(tmp_path: Path) -> None:
    served = tmp_path / "served.bin"
    served.write_bytes(b"not the archive you are looking for")
    dest_dir = tmp_path / "dest"
    dest = dest_dir / "train-images-idx3-ubyte.gz"
    with pytest.raises(data.DataError, match="sha256 mismatch"):
        download(served.as_uri(), dest, "0" * 64)
    assert list(dest_dir.iterdir()) == []

    good = hashlib.sha256(served.read_bytes()).hexdigest()
    download(served.as_uri(), dest, good)
    assert dest.read_bytes() == served.read_bytes() and list(dest_dir.iterdir()) == [dest]


def test_download__transfer_failure_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "file.gz"
    with pytest.raises(OSError):
        download((tmp_path / "absent").as_uri(), dest, "0" * 64)
    assert list(dest.parent.iterdir()) == []
