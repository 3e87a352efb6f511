"""Loading the nightly suite file: read, validate (orchestrator.nightly.schema), merge ``smoke``, resolve.

The file is validated whole, trainer configs included, before anything runs: every mistake raises
:class:`SuiteError`, whose message is one line naming the file and the offending dotted key (built from
pydantic's error location and message, with a did-you-mean hint for an unknown key), so the CLI exits 2
without a traceback instead of failing an hour into the night.

What the rest of the nightly gets is a :class:`Suite`: the sections to run as plain frozen specs, with
``--smoke`` already applied, disabled sections dropped, and each trainer section's own keys (``train.device``
of a bench, the overhead's thread count) added to its overrides.

Imports neither torch, MLflow nor Ray: a bad file must fail in a second.
"""

from __future__ import annotations

import copy
import hashlib
import json
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from jepa_core.config import PRESETS, ConfigError, flatten, read_yaml
from orchestrator.nightly.schema import (
    ERROR_TYPE,
    MeasuredSections,
    SuiteFile,
    TrainerSpec,
    keys_at,
)
from orchestrator.nightly.tolerance import Tolerance
from orchestrator.sweep.spec import suggest

__all__ = ["BenchSpec", "OverheadSpec", "QualitySpec", "Suite", "SuiteError", "TrainerSpec", "load_suite"]

# Not part of what is measured: changing them keeps the baseline.
UNMEASURED = ("trainer", "timeout_s", "storage_path")


class SuiteError(ValueError):
    """An invalid suite file; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class BenchSpec:
    device: str  # cpu | cuda
    trainer: TrainerSpec
    steps: int
    warmup: int
    peak_size: int | None


@dataclass(frozen=True)
class QualitySpec:
    trainer: TrainerSpec
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class OverheadSpec:
    trainer: TrainerSpec
    seeds: tuple[int, ...]
    cpus: int  # per trial, in the sweep and in the direct runs alike (torch threads)
    timeout_s: float
    storage_path: str | None  # Tune's storage; None: a fresh temporary folder (one machine only)


@dataclass(frozen=True)
class Suite:
    """A validated suite, with ``--smoke`` already applied when ``smoke`` is true."""

    path: Path
    smoke: bool
    experiment: str
    window: int
    trend_nights: int
    bench: tuple[BenchSpec, ...]
    quality: QualitySpec | None
    overhead: OverheadSpec | None
    tolerances: dict[str, Tolerance]
    settings: dict[str, Any] = field(repr=False)  # the effective measured sections, as plain data

    @property
    def fingerprint(self) -> str:
        """A short hash of what is measured (not of tolerances or comments): nights compare only within it."""
        blob = json.dumps(self.settings, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


# ---- one line per validation error -----------------------------------------------------------------
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother = 60, 60


def _key_and_index(error: ErrorDetails) -> tuple[str, int | None]:
    """The dotted key of an error's location, and the list index in it (``quality.seeds`` item 1), if any.

    pydantic marks a mapping's key with a ``[key]`` part after it; an integer without one is a list index.
    A check written in orchestrator.nightly.schema may name a key below its model (context ``where``).
    """
    loc, parts, index = error["loc"], [], None
    for i, part in enumerate(loc):
        if part == "[key]":
            continue
        is_key = (i + 1 < len(loc) and loc[i + 1] == "[key]") or error["type"] == "invalid_key"
        if isinstance(part, int) and not is_key:
            index = part
            continue
        parts.append(str(part))
    where = (error.get("ctx") or {}).get("where")
    if where:
        parts.append(where)
    return ".".join(parts), index


def _problem_text(error: ErrorDetails, model: type[BaseModel]) -> str:
    """What is wrong, from pydantic's message (with the value given), or a check's own message."""
    kind, value = error["type"], error.get("input")
    if kind == ERROR_TYPE:
        return error["msg"]
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        allowed = keys_at(model, [p for p in error["loc"][:-1] if p != "[key]"])
        return f"unknown key{suggest(name, allowed)}; allowed: {', '.join(allowed)}"
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping, got {type(value).__name__}"
    if kind == "missing":
        return error["msg"]
    return f"{error['msg']}, got {_SHORT.repr(value)}"


def _error_line(path: Path, error: ErrorDetails, model: type[BaseModel], prefix: str) -> str:
    """``<file>: key '<prefix><dotted key>': <problem>``, one line."""
    key, index = _key_and_index(error)
    problem = _problem_text(error, model)
    if index is not None:
        problem = f"item {index}: {problem}"
    if not key:
        return f"{path}: {problem}"
    return f"{path}: key '{prefix}{key}': {problem}"


def _validate(model: type[BaseModel], data: dict[str, Any], path: Path, prefix: str = "") -> Any:
    """``model`` validated from ``data``; its first error raises SuiteError (``prefix``: for the key)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(_error_line(path, exc.errors(include_url=False)[0], model, prefix)) from None


# ---- the --smoke merge and the resolved specs ------------------------------------------------------
def _merge(base: Any, over: Any, key: str = "") -> Any:
    """``over`` merged into ``base``: mappings key by key, trainer overrides by dotted key, the rest replaced.

    A tolerance is replaced whole: merging ``{abs: ..}`` into ``{rel: ..}`` would make it ambiguous.
    """
    if not isinstance(base, dict) or not isinstance(over, dict):
        return copy.deepcopy(over)
    if key.endswith("overrides"):
        try:
            return {**flatten(base), **flatten(over)}
        except ConfigError:
            return copy.deepcopy(over)  # reported by the validation of the merged section
    if key == "tolerances":
        return {**base, **copy.deepcopy(over)}
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k), v, k) if k in base else copy.deepcopy(v)
    return out


def _resolve(sections: MeasuredSections) -> dict[str, Any]:
    """The enabled sections as specs, and the tolerances."""
    bench = sections.bench
    benches = tuple(
        BenchSpec(device, body.trainer_spec(device), body.steps, body.warmup, body.peak_size)
        for device, body in bench.devices().items()
        if bench.enabled and body.enabled
    )
    q, o = sections.quality, sections.overhead
    quality = QualitySpec(q.trainer_spec(), tuple(q.seeds)) if q is not None and q.enabled else None
    overhead = None
    if o is not None and o.enabled:
        overhead = OverheadSpec(o.trainer_spec(), tuple(o.seeds), o.cpus, o.timeout_s, o.storage_path)
    return {
        "bench": benches,
        "quality": quality,
        "overhead": overhead,
        "tolerances": {metric: spec.tolerance() for metric, spec in sections.tolerances.items()},
    }


def _settings(sections: dict[str, Any]) -> dict[str, Any]:
    """The measured sections as plain data (for the fingerprint and the MLflow artifact)."""

    def plain(spec: Any) -> Any:
        if spec is None:
            return None
        out = {k: v for k, v in vars(spec).items() if k not in UNMEASURED}
        out["preset"] = spec.trainer.preset
        out["overrides"] = dict(sorted(spec.trainer.overrides.items()))
        if spec.trainer.preset:  # what the name stands for: a preset redefined starts a new baseline
            out["preset_settings"] = dict(sorted(PRESETS[spec.trainer.preset].items()))
        return out

    return {
        "bench": [plain(b) for b in sections["bench"]],
        "quality": plain(sections["quality"]),
        "overhead": plain(sections["overhead"]),
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        data, _ = read_yaml(path, "suite file")
    except ConfigError as exc:
        raise SuiteError(str(exc)) from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite file is a mapping (bench, quality, overhead, tolerances, smoke)")
    return data


def load_suite(path: str | Path, smoke: bool = False) -> Suite:
    """Reads and validates a suite file; with ``smoke``, its ``smoke`` section is merged over the rest.

    Both the full and the smoke suite are validated either way: the nightly GPU run must not be the first to
    find a typo in the smoke section, nor CI's smoke run one in the full suite. A key of the merged smoke
    suite is named ``smoke.<key>``.

    Raises:
        SuiteError: naming the file and the first offending key.
    """
    path = Path(path)
    data = _read(path)
    full: SuiteFile = _validate(SuiteFile, data, path)
    overlay = dict(data.get("smoke") or {})  # its shape was validated with the file
    merged = {k: _merge(data.get(k), v, k) if k in data else v for k, v in overlay.items()}
    measured = {k: v for k, v in {**data, **merged}.items() if k in MeasuredSections.model_fields}
    small: MeasuredSections = _validate(MeasuredSections, measured, path, "smoke.")
    chosen = _resolve(small if smoke else full)
    if not chosen["bench"] and chosen["quality"] is None and chosen["overhead"] is None:
        raise SuiteError(
            f"{path}: key '{'smoke' if smoke else 'bench'}': every section is disabled: nothing to measure"
        )
    return Suite(
        path=path,
        smoke=smoke,
        experiment=full.experiment,
        window=full.baseline.window,
        trend_nights=full.trend_nights,
        bench=chosen["bench"],
        quality=chosen["quality"],
        overhead=chosen["overhead"],
        tolerances=chosen["tolerances"],
        settings=_settings(chosen),
    )
