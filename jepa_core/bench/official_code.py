"""The official I-JEPA code, imported at run time from a checkout of facebookresearch/ijepa.

Nothing of it is copied into this project: ``python -m jepa_core.bench --suite --official DIR`` imports the
modules of :data:`OFFICIAL_NAMES` from ``DIR`` and checks that they are the ones it needs.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# The modules and names used here, as the official code imports them (``src`` is a top-level package).
OFFICIAL_NAMES = {
    "src.models.vision_transformer": ("VisionTransformer", "VisionTransformerPredictor"),
    "src.masks.multiblock": ("MaskCollator",),
    "src.masks.utils": ("apply_masks",),
    "src.utils.tensors": ("repeat_interleave_batch",),
}


class OfficialCodeError(ValueError):
    """The official code cannot be used (not a checkout, or a grid it cannot mask); one line naming why."""


@dataclass(frozen=True)
class OfficialCode:
    """The official modules imported from one checkout, in the order of :data:`OFFICIAL_NAMES`."""

    root: Path
    vit: ModuleType
    multiblock: ModuleType
    mask_utils: ModuleType
    tensors: ModuleType


def official_commit(root: Path) -> str:
    """``git rev-parse HEAD`` in ``root`` if it is a git checkout and git answers, else ``"unknown"``."""
    if not (root / ".git").exists():  # git -C alone would also answer for a repository that contains root
        return "unknown"
    cmd = ["git", "-C", str(root), "rev-parse", "HEAD"]
    try:  # a failing git raises CalledProcessError, a SubprocessError
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_official(directory: str | Path) -> OfficialCode:
    """Imports the modules of :data:`OFFICIAL_NAMES` from ``directory`` (on ``sys.path`` only meanwhile).

    Raises:
        OfficialCodeError: ``directory`` is not a folder or lacks one of their files, the import fails, a
            module comes from elsewhere (another package named ``src``), or lacks one of those names.
    """
    root = Path(directory).expanduser().resolve()
    where = f"--official {directory}"
    if not root.is_dir():
        raise OfficialCodeError(f"{where}: not a directory")
    for path in (f"{name.replace('.', '/')}.py" for name in OFFICIAL_NAMES):
        if not (root / path).is_file():
            raise OfficialCodeError(f"{where}: not a checkout of facebookresearch/ijepa (no {path})")
    sys.path.insert(0, str(root))
    try:
        modules = [importlib.import_module(name) for name in OFFICIAL_NAMES]
    except Exception as exc:  # whatever fails inside third-party code becomes the one-line error
        raise OfficialCodeError(f"{where}: importing the official code failed: {exc!r}") from exc
    finally:
        sys.path.remove(str(root))
    for mod, names in zip(modules, OFFICIAL_NAMES.values(), strict=True):
        if not Path(mod.__file__ or "").resolve().is_relative_to(root):
            raise OfficialCodeError(f"{where}: {mod.__name__} was imported from {mod.__file__}")
        for missing in (n for n in names if not hasattr(mod, n)):
            raise OfficialCodeError(f"{where}: {mod.__name__} has no {missing} (another version?)")
    return OfficialCode(root, *modules)
