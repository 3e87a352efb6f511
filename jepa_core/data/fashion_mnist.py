"""Fashion-MNIST: where to find its IDX files, how to download them, and how to parse them.

Folders are searched in the documented order: ``data.root``, ``$JEPA_DATA``, the Debian package's
``/usr/share/datasets/fashion-mnist``, then this project's cache; only if none holds the files are they
downloaded from the official mirror, each verified by sha256. If that fails too, the error names all three
ways to provide the dataset. IDX files are parsed with numpy (nothing here unpickles) and cached by path,
modification time and size.
"""

from __future__ import annotations

import functools
import gzip
import http.client
import math
import os
from pathlib import Path

import numpy as np

from jepa_core.data.files import DataError, download, file_stamp

__all__ = [
    "FASHION_MNIST_MIRROR",
    "FASHION_MNIST_SHA256",
    "SYSTEM_FASHION_MNIST_DIR",
    "load_fashion_mnist",
    "read_idx_pair",
]

# Module-level (not baked into functions) so tests and unusual installs can point them elsewhere.
FASHION_MNIST_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_SHA256: dict[str, str] = {
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
}
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dims
_IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dim

_FASHION_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _cache_dir() -> Path:
    return Path.home() / ".cache" / "jepa_lab" / "fashion-mnist"


def _idx_file(folder: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``folder``: gzipped or not, with either '-' or '.' before 'idx'."""
    dotted = stem.replace("-idx", ".idx")
    for candidate in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def _idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    images_stem, labels_stem = _FASHION_FILES[split]
    images, labels = _idx_file(folder, images_stem), _idx_file(folder, labels_stem)
    return (images, labels) if images is not None and labels is not None else None


def _fashion_candidates(root: str | None) -> list[Path]:
    """Folders to search, in the project's documented order (cache last, before any download)."""
    bases: list[Path] = []
    if root:
        bases.append(Path(root).expanduser())
    env = os.environ.get("JEPA_DATA")
    if env:
        bases.append(Path(env).expanduser())
    folders: list[Path] = []
    for base in bases:
        # Accept the folder with the files itself, or a data root holding the dataset in a subfolder
        # (ours, or torchvision's layout so an existing torchvision download is reused).
        folders += [base, base / "fashion-mnist", base / "fashion_mnist", base / "FashionMNIST" / "raw"]
    folders += [SYSTEM_FASHION_MNIST_DIR, _cache_dir()]
    return folders


def load_fashion_mnist(split: str, root: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Read-only uint8 images ``[N,1,28,28]`` and labels ``[N]`` of a split, ``"train"`` or ``"test"``.

    The first candidate folder that holds both files of the split wins; without one, all four archives are
    downloaded into the cache.

    Raises:
        DataError: No folder holds the files and the download failed; names all three ways to get them.
    """
    for folder in _fashion_candidates(root):
        pair = _idx_pair(folder, split)
        if pair is not None:
            return read_idx_pair(*pair)
    try:
        _download_fashion_mnist(_cache_dir())
    except (DataError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(
            "Fashion-MNIST not found: pass --set data.root=DIR, set JEPA_DATA=DIR, or run "
            f"'apt-get install dataset-fashion-mnist' (download from {FASHION_MNIST_MIRROR} failed: {reason})"
        ) from exc
    pair = _idx_pair(_cache_dir(), split)
    if pair is None:  # pragma: no cover - the download just put the files there
        raise DataError(f"Fashion-MNIST download finished but {_cache_dir()} lacks the {split} files")
    return read_idx_pair(*pair)


def _download_fashion_mnist(dest_dir: Path) -> None:
    """Fetch all four Fashion-MNIST archives into ``dest_dir``, each verified by sha256."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    base = FASHION_MNIST_MIRROR if FASHION_MNIST_MIRROR.endswith("/") else FASHION_MNIST_MIRROR + "/"
    for filename, sha256 in FASHION_MNIST_SHA256.items():
        dest = dest_dir / filename
        if not dest.is_file():
            download(base + filename, dest, sha256)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read-only uint8 images ``[N,1,H,W]`` and labels ``[N]`` parsed from two IDX files (gzipped or not).

    Raises:
        DataError: A file is unreadable, not an unsigned-byte IDX file, truncated, or the two disagree.
    """
    images = _read_idx_cached(str(images_path), *file_stamp(images_path))
    labels = _read_idx_cached(str(labels_path), *file_stamp(labels_path))
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{images_path} / {labels_path}: expected 3-d images and 1-d labels")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels"
        )
    return images[:, None, :, :], labels


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    """Parse one IDX file (unsigned-byte data); cached because trials and evals reload the same files.

    The returned array is read-only because it is shared between callers.
    """
    del mtime_ns, size  # only part of the cache key
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 4:
        raise DataError(f"{path} is not an IDX file (too short)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC):
        raise DataError(f"{path} is not an unsigned-byte IDX file (magic {magic:#010x})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) != header + math.prod(dims):
        raise DataError(f"{path} is truncated or corrupt: header says {dims}, file has {len(raw)} bytes")
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    array.flags.writeable = False
    return array
