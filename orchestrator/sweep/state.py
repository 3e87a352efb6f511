"""What ``--resume`` needs to continue an interrupted sweep: one JSON file in its Tune experiment folder.

``<storage>/<experiment>/jepa_sweep.json`` holds the sweep's name, ``status`` (``running`` until the report is
written, then ``finished``), the MLflow parent run id, the profile (``gpu``, ``cpu`` or ``smoke``) it runs,
which a resumed run keeps, and the ``--set`` it ran with, which a resumed run must repeat. Standard library
only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_FILE = "jepa_sweep.json"  # in the Tune experiment folder: what --resume needs to continue it


def read_state(experiment_dir: Path) -> dict[str, Any]:
    return json.loads((experiment_dir / STATE_FILE).read_text())


def write_state(experiment_dir: Path, state: dict[str, Any]) -> None:
    (experiment_dir / STATE_FILE).write_text(json.dumps(state, indent=1))


def state_profile(state: dict[str, Any], main_profile: str) -> str:
    """The profile a sweep ran. State files written before profiles existed hold only ``smoke``: without it
    the sweep ran its file as written, ``main_profile`` (``SweepSpec.main_profile``)."""
    return state.get("profile") or ("smoke" if state.get("smoke") else main_profile)


def find_interrupted(storage: Path, name: str) -> Path | None:
    """The newest Tune experiment folder of sweep ``name`` that never finished."""
    candidates = []
    for state_file in storage.glob(f"{name}-*/{STATE_FILE}"):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        if state.get("status") == "running" and state.get("name") == name:
            candidates.append(state_file.parent)
    return max(candidates, key=lambda p: p.name) if candidates else None
