"""The field types of the sweep-file schema, and the validators they run (:mod:`orchestrator.sweep.spec`).

Strict where a wrong type is a mistake in the file (counts, seeds, resources, text); lax where YAML itself
gets it wrong (distribution bounds read ``"1e-3"``, which PyYAML leaves a string, as the number it means).
Trainer keys are checked against the trainer config's own keys, with a did-you-mean hint.
"""

from __future__ import annotations

import math
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictFloat, StrictInt, StrictStr

from jepa_core.config import Config, ConfigError, flatten
from orchestrator.sweep.errors import KeyedError, one_of, suggest

SCHEDULERS = ("fifo", "asha")
CONFIG_KEYS = frozenset(Config().to_flat())


def is_int_key(key: str) -> bool:
    """Whether a dotted trainer key holds an integer (so only ``int_uniform`` may sample it)."""
    section, _, name = key.partition(".")
    hint = typing.get_type_hints(type(getattr(Config(), section)))[name]
    return int in (hint, *typing.get_args(hint))


def none_as_empty(value: Any) -> Any:
    return {} if value is None else value  # `trainer:` with nothing under it is an empty section


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _bound(value: Any) -> Any:
    """A distribution bound: a finite int or float, or a string that reads as one (PyYAML's ``1e-3``)."""
    number = value
    if isinstance(value, str):
        for kind in (int, float):
            try:
                number = kind(value)
                break
            except ValueError:
                continue
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        raise ValueError(f"expected a number, got {value!r}")
    return number


def _trainer_overrides(value: dict[str, Any]) -> dict[str, Any]:
    """Trainer overrides (nested or dotted), flattened; each key must exist in the trainer config."""
    try:
        flat = flatten(value)
    except ConfigError as exc:
        raise KeyedError(None, str(exc)) from None
    for key in flat:
        if key not in CONFIG_KEYS:
            raise KeyedError(key, f"unknown trainer config key{suggest(key, CONFIG_KEYS)}")
    return flat


def _swept_key(key: str) -> str:
    if key not in CONFIG_KEYS:
        raise ValueError(f"unknown trainer config key{suggest(key, CONFIG_KEYS)}")
    if key == "train.seed":
        raise ValueError("seeds are swept with the top-level 'seeds' list")
    return key


def scheduler_shorthand(value: Any) -> Any:
    """``scheduler: asha`` is ``scheduler: {type: asha}``."""
    if isinstance(value, str):
        if value not in SCHEDULERS:
            raise ValueError(one_of(value, SCHEDULERS))
        return {"type": value}
    return value


EMPTY_IF_NONE = BeforeValidator(none_as_empty)
Count = Annotated[StrictInt, Field(gt=0)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
Number = Annotated[StrictFloat, Field(allow_inf_nan=False)]  # an int is a number too; a bool or "2" is not
Text = Annotated[StrictStr, AfterValidator(_non_blank)]
Bound = Annotated[int | float, BeforeValidator(_bound)]
Overrides = Annotated[dict[str, Any], EMPTY_IF_NONE, AfterValidator(_trainer_overrides)]
SweptKey = Annotated[str, AfterValidator(_swept_key)]
