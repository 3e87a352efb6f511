"""Building a config from layers: defaults < preset < YAML files < overrides (``--set``), validated once.

Every layer is a mapping of nested (``{"mask": {"ratio": 0.5}}``) or dotted (``{"mask.ratio": 0.5}``) keys.
The layers are flattened to dotted keys and merged, later layers winning key by key, and the result is
validated by the schema; an error names the key and the layer that set it (the file, ``--set`` or the
preset). Only the merged value of a key is validated: a value a later layer replaces is never checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from jepa_core.config.errors import ConfigError, from_validation_error
from jepa_core.config.presets import PRESETS
from jepa_core.config.schema import Config, config_keys


class Overrides(dict[str, Any]):
    """A layer of overrides labelled with where it came from; the label prefixes its errors.

    :func:`parse_set` returns one labelled ``"--set"``. A plain dict is an unlabelled layer: its caller names
    the source itself (the sweep spec names the sweep file's entry). Copying it (``dict(overrides)``) drops
    the label.
    """

    def __init__(self, values: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), source: str | None = None):
        super().__init__(values)
        self.source = source


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"mask": {"ratio": 0.5}}`` -> ``{"mask.ratio": 0.5}``; already-dotted keys pass through.

    Only the top level is unfolded: a mapping under a section key is a (wrong) value of that key.
    """
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ConfigError(f"config key {key!r} is not a string")
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and "." not in key and not prefix:
            flat.update(flatten(value, prefix=f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def parse_set(items: list[str]) -> Overrides:
    """Parses ``["mask.ratio=0.5", ...]`` (values read as YAML scalars) into overrides labelled ``--set``."""
    out = Overrides(source="--set")
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}", source="--set")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(
                f"--set {key.strip()}: unreadable value {raw!r}", key=key.strip(), source="--set"
            ) from None
        out[key.strip()] = value
    return out


def read_yaml(path: str | Path, what: str = "config file") -> tuple[Any, str]:
    """Reads and safely parses one YAML file; returns (data, text).

    Raises:
        ConfigError: One line naming the file (and the line, for a syntax error): unreadable, not UTF-8,
            invalid YAML, or a tag that would build a Python object (``yaml.safe_load`` refuses those).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read {what} ({exc.strerror})", source=str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: cannot read {what} (not UTF-8 text: byte {exc.start})", source=str(p)
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise ConfigError(f"{p}{where}: invalid YAML ({problem})", source=str(p)) from None
    return data, text


def load_yaml_file(path: str | Path) -> dict[str, Any]:
    """Reads a YAML config file of (nested or dotted) overrides; an empty file is no overrides."""
    data, _ = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of config keys", source=str(path))
    return data


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"mask.ratio": 0.5}`` -> ``{"mask": {"ratio": 0.5}}``, split at the first dot.

    A key without a dot stays at the top level, where the schema reports it (unknown, or a section given a
    value).
    """
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        section, dot, name = key.partition(".")
        if not dot:
            nested[section] = value
            continue
        bucket = nested.setdefault(section, {})
        if isinstance(bucket, dict):  # else the section was given a value, reported by the schema
            bucket[name] = value
    return nested


def _validated(flat: Mapping[str, Any], sources: Mapping[str, tuple[int, str | None]]) -> Config:
    try:
        return Config.model_validate(_nest(flat))
    except ValidationError as exc:
        raise from_validation_error(exc, config_keys(), sources) from None


def build_config(
    preset: str | None = None,
    files: list[str | Path] | None = None,
    overrides: list[Mapping[str, Any]] | None = None,
) -> Config:
    """Defaults <- preset <- files (in order) <- overrides (in order), then validated.

    Args:
        preset: A name in :data:`PRESETS`.
        files: YAML files of overrides.
        overrides: Mappings of overrides; an :class:`Overrides` names its source in errors.

    Raises:
        ConfigError: unknown preset, unreadable file, unknown key, or a value of the wrong type or out of
            range; one line naming the layer that set the value (when labelled) and the dotted key.
    """
    layers: list[tuple[str | None, Mapping[str, Any]]] = []
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset '{preset}' (choose from {', '.join(sorted(PRESETS))})")
        layers.append((f"preset '{preset}'", PRESETS[preset]))
    layers += [(str(f), load_yaml_file(f)) for f in files or []]
    layers += [(getattr(layer, "source", None), layer) for layer in overrides or []]

    merged: dict[str, Any] = {}
    sources: dict[str, tuple[int, str | None]] = {}
    for rank, (label, layer) in enumerate(layers):
        try:
            flat = flatten(layer)
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc}" if label else str(exc), source=label) from None
        for key, value in flat.items():
            merged[key] = value
            sources[key] = (rank, label)
    return _validated(merged, sources)


def validate(cfg: Config) -> None:
    """Checks a config changed by assignment (assignments are not validated) against the schema.

    Raises:
        ConfigError: One line naming the first offending key.
    """
    _validated(cfg.to_flat(), {})


def dump_yaml(cfg: Config) -> str:
    """The resolved config as nested YAML, sections and keys in declaration order (``config.yaml``)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
