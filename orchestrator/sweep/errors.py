"""One-line input errors: the file, the dotted key, the problem, and a did-you-mean hint where one fits.

:func:`error_line` turns the first error of a pydantic :class:`~pydantic.ValidationError` into such a line,
from the error's location (``loc``) and message (``msg``): ``sweeps/x.yaml: key 'parameters.mask.ratio.max':
must be greater than min (0.5), got 0.5``. Validators that check a rule across fields raise
:class:`KeyedError`, which names the key the rule blames, since pydantic can only blame the field or model
the validator belongs to.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails


class SpecError(ValueError):
    """An invalid sweep file or command-line override; the message is one line naming file and key."""


class KeyedError(ValueError):
    """Raised inside a validator: ``problem`` blamed on ``key``, dotted and relative to where it is raised.

    Raised in a model validator of the whole file, ``key`` is the full dotted key; in a field validator, the
    part below that field (a trainer key under ``trainer.overrides``); None blames the field itself.
    """

    def __init__(self, key: str | None, problem: str) -> None:
        super().__init__(problem)
        self.key, self.problem = key, problem


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def key_error(path: Path, key: str, problem: str) -> SpecError:
    """``SpecError("<path>: key '<key>': <problem>")``."""
    return SpecError(f"{path}: key '{key}': {problem}")


def one_of(value: Any, choices: Iterable[str]) -> str:
    """``must be one of a, b, got 'x' (did you mean 'a'?)``: the problem with a value outside ``choices``."""
    names = list(choices)
    return f"must be one of {', '.join(names)}, got {value!r}{suggest(str(value), names)}"


def _unwrap(node: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` to ``X``."""
    while True:
        if typing.get_origin(node) is Annotated:
            node = typing.get_args(node)[0]
            continue
        if typing.get_origin(node) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(node) if a is not type(None)]
            if len(args) == 1:
                node = args[0]
                continue
        return node


def _model(node: Any) -> type[BaseModel] | None:
    node = _unwrap(node)
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def field_names(model: type[BaseModel]) -> list[str]:
    """The keys a schema model accepts, as written in a file (aliases where a field has one)."""
    return [f.alias or name for name, f in model.model_fields.items()]


def schema_at(root: type[BaseModel], loc: Iterable[str | int]) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` below ``root`` (through nested models and dicts)."""
    node: Any = root
    for part in loc:
        model = _model(node)
        if model is not None:
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            node = field.annotation
        elif typing.get_origin(_unwrap(node)) is dict:
            node = typing.get_args(_unwrap(node))[1]
        else:
            return None
    return _model(node)


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def error_line(path: Path, err: ErrorDetails, root: type[BaseModel]) -> str:
    """One line for one pydantic error: ``<path>: key '<dotted loc>': <problem>``.

    Dict keys and field names join into the dotted key (``parameters.mask.ratio.values``); a list position
    becomes ``item N`` in the problem, so the key stays the one the file spells.
    """
    loc = list(err["loc"])
    kind, cause = err["type"], (err.get("ctx") or {}).get("error")
    parts: list[str] = []
    items: list[int] = []
    for i, part in enumerate(loc):
        if part == "[key]":
            continue
        is_key = kind == "invalid_key" or (i + 1 < len(loc) and loc[i + 1] == "[key]")
        if isinstance(part, int) and not is_key:
            items.append(part)
        else:
            parts.append(str(part))
    if isinstance(cause, KeyedError):
        parts += [cause.key] if cause.key else []
        problem = cause.problem
    elif isinstance(cause, ValueError):
        problem = str(cause)
    elif kind == "missing":
        problem = "is required"
    elif kind == "invalid_key":
        problem = "keys must be strings"
    elif kind == "extra_forbidden":
        model = schema_at(root, [p for p in loc[:-1] if p != "[key]"])
        allowed = field_names(model) if model is not None else []
        problem = f"unknown key{suggest(parts[-1], allowed)}; allowed: {', '.join(allowed)}"
    elif kind == "literal_error":
        problem = one_of(err["input"], re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected"))))
    elif kind in ("model_type", "dict_type"):
        problem = f"expected a mapping, got {_shown(err['input'])}"
    elif kind == "too_short":
        least = (err.get("ctx") or {}).get("min_length", 1)
        problem = f"expected at least {least} item{'s' * (least != 1)}, got {_shown(err['input'])}"
    else:  # pydantic's own message: "Input should be a valid integer" -> "input should be ..., got 'x'"
        problem = f"{err['msg'][:1].lower()}{err['msg'][1:]}, got {_shown(err['input'])}"
    if items:
        problem = f"item {items[0] + 1}: {problem}"
    key = ".".join(parts)
    return f"{path}: key '{key}': {problem}" if key else f"{path}: {problem}"
