"""CIFAR-10 and CIFAR-100 from their *binary* releases, parsed with numpy and cached per file.

The python-pickle release is recognised and refused on purpose: unpickling a file from an untrusted download
can run arbitrary code.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jepa_core.data.files import DataError, file_stamp

__all__ = ["CIFAR_LAYOUTS", "CifarLayout", "load_cifar"]


@dataclass(frozen=True)
class CifarLayout:
    """Where a CIFAR binary release keeps its files, and how its records are laid out."""

    folder: str  # folder the binary archive extracts to
    pickle_folder: str  # folder of the python-pickle release, only to recognise it and say why it is refused
    pickle_marker: str  # a file that exists only in the pickle release
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_bytes: int
    archive: str
    num_classes: int


CIFAR_LAYOUTS: dict[str, CifarLayout] = {  # by canonical dataset name
    "cifar10": CifarLayout(
        folder="cifar-10-batches-bin",
        pickle_folder="cifar-10-batches-py",
        pickle_marker="data_batch_1",
        train=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        test=("test_batch.bin",),
        label_bytes=1,
        archive="cifar-10-binary.tar.gz",
        num_classes=10,
    ),
    "cifar100": CifarLayout(
        folder="cifar-100-binary",
        pickle_folder="cifar-100-python",
        pickle_marker="train",
        train=("train.bin",),
        test=("test.bin",),
        # Two label bytes per record: coarse (20 superclasses) then fine (100 classes); we use fine.
        label_bytes=2,
        archive="cifar-100-binary.tar.gz",
        num_classes=100,
    ),
}
_CIFAR_PIXELS = 3 * 32 * 32


def load_cifar(name: str, split: str, root: str | None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``[N,3,32,32]`` and int64 labels ``[N]`` of one split of a CIFAR binary release.

    Each batch file is parsed once per path, modification time and size; the split is their concatenation.
    A split with some of its batch files missing is read from the others, with a warning.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        split: A canonical split, ``"train"`` or ``"test"``.
        root: The extracted archive's folder, or its parent.

    Raises:
        DataError: No root, no binary files (naming the pickle release if that is what is there), a record
            size that does not fit, or a label out of range.
    """
    layout = CIFAR_LAYOUTS[name]
    if not root:
        raise DataError(
            f"{name} needs its binary release ({layout.archive}) unpacked: pass --set data.root=DIR"
        )
    base = Path(root).expanduser()
    files = layout.train if split == "train" else layout.test
    present: list[Path] = []
    # Accept root pointing at the extracted folder itself or at its parent.
    for folder in (base, base / layout.folder):
        present = [folder / f for f in files if (folder / f).is_file()]
        if present:
            break
    if not present:
        for folder in (base, base / layout.pickle_folder):
            if (folder / layout.pickle_marker).is_file():
                raise DataError(
                    f"{folder} holds the python-pickle {name} release, which this project never loads "
                    f"(unpickling can run code); download the binary version ({layout.archive}) instead"
                )
        raise DataError(
            f"{name} binary files ({', '.join(files)}) not found in {base} or {base / layout.folder}; "
            f"extract {layout.archive} there or pass --set data.root=DIR"
        )
    if len(present) < len(files):
        # A partly extracted archive would silently train on a fraction of the data; say so.
        missing = sorted(set(files) - {p.name for p in present})
        warnings.warn(
            f"{name}: {folder} lacks {', '.join(missing)}; using the other batches only", stacklevel=3
        )
    parts = [_read_cifar_file(str(path), layout.label_bytes, *file_stamp(path)) for path in present]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and int(labels.max()) >= layout.num_classes:
        raise DataError(
            f"{name}: label {int(labels.max())} out of range in {folder}; is this the right dataset?"
        )
    return images, labels


@functools.lru_cache(maxsize=8)
def _read_cifar_file(path: str, label_bytes: int, mtime_ns: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CIFAR binary batch into read-only uint8 ``[N,3,32,32]`` images and int64 labels."""
    del mtime_ns  # only part of the cache key
    record = label_bytes + _CIFAR_PIXELS
    if size == 0 or size % record:
        raise DataError(f"{path}: size {size} is not a multiple of the {record}-byte CIFAR record")
    try:
        raw = np.fromfile(path, dtype=np.uint8).reshape(-1, record)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    labels = raw[:, label_bytes - 1].astype(np.int64)  # the last label byte is the fine label for CIFAR-100
    images = np.ascontiguousarray(raw[:, label_bytes:]).reshape(-1, 3, 32, 32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels
