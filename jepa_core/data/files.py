"""What every file-backed source shares: the one error type, a file's cache stamp, a verified download.

:class:`DataError` is what every loader in this package raises when a dataset cannot be found or read; its
message is one line telling the user what to do. :func:`file_stamp` is the ``(mtime, size)`` part of the
parse caches' keys, so a file replaced on disk is parsed again. :func:`download` fetches a file atomically and
keeps it only if its sha256 matches.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

__all__ = ["DataError", "download", "file_stamp"]

_DOWNLOAD_TIMEOUT_S = 60.0


class DataError(Exception):
    """Dataset cannot be found/loaded; the message is one clear line telling the user what to do."""


def file_stamp(path: Path) -> tuple[int, int]:
    """``(mtime_ns, size)`` of ``path``: part of a parse cache's key, so a file replaced on disk (e.g.
    re-downloaded) is parsed again."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def download(url: str, dest: Path, sha256: str) -> None:
    """Download ``url`` to ``dest`` atomically, keeping it only if its sha256 matches.

    The bytes go to a temporary file beside ``dest`` and are renamed into place only after the hash
    checks out, so an interrupted or tampered download never leaves a file that a later run would trust.

    Raises:
        DataError: The hash does not match.
        OSError: The transfer failed (``urllib.error.URLError`` is an ``OSError``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise DataError(f"sha256 mismatch for {url}: expected {sha256}, got {actual}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
