"""``ConfigError`` and the one-line messages built from pydantic's validation errors.

Every invalid key or value is reported as one line: the source that set it (a file, ``--set`` or a preset,
when known), the dotted key, what the key accepts and the value given, e.g.
``run.yaml: config key 'mask.ratio' must be less than 1, got 1.5``. Unknown keys get a did-you-mean hint.
The line always contains ``config key '<dotted.key>'`` (callers such as the sweep spec search for it), and
the key is also on the exception as :attr:`ConfigError.key`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

# The error type of the cross-field rules below, raised by the schema's model validators.
RULE_ERROR = "config_rule"

# Pydantic's type errors, worded as before the schema moved to pydantic (tests and users match on them).
_TYPE_PHRASES = {
    "int_type": "expects an integer",
    "int_parsing": "expects an integer",
    "int_from_float": "expects an integer",
    "float_type": "expects a number",
    "float_parsing": "expects a number",
    "bool_type": "expects true or false",
    "bool_parsing": "expects true or false",
    "string_type": "expects a string",
    "finite_number": "must be finite",
}


class ConfigError(ValueError):
    """An invalid config key or value, or unreadable config input; the message is one line.

    Attributes:
        key: The dotted config key the error is about (``"mask.ratio"``), or None when it is about no one key
            (an unreadable file, a malformed ``--set``).
        source: What set the offending value: a file path, ``"--set"``, ``"preset 'NAME'"``, or None when the
            value came from an unlabelled override mapping or the defaults.
    """

    def __init__(self, message: str, key: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.source = source


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def rule_error(key: str, rule: str, value: Any, involved: tuple[str, ...] = ()) -> PydanticCustomError:
    """The error a model validator raises for a rule broken by ``key`` (whose value is ``value``).

    Args:
        key: The dotted key the message names.
        rule: What the key must satisfy, e.g. ``"must divide model.embed_dim=192"``.
        value: The key's value, quoted after ``got``.
        involved: Every dotted key the rule reads (``key`` among them): the message names the source of the
            one set last, since that is the likeliest to have broken the rule.
    """
    # The rule goes through the context, not the template, so braces in it are never formatted.
    return PydanticCustomError(
        RULE_ERROR, "{rule}", {"rule": rule, "key": key, "value": value, "keys": involved or (key,)}
    )


def _dotted(error: ErrorDetails) -> str:
    loc = [str(part) for part in error["loc"]]
    value = error.get("input")
    # An unknown section arrives as {"nosuch": {"key": 1}}: name the key the user wrote, "nosuch.key".
    if error["type"] == "extra_forbidden" and len(loc) == 1 and isinstance(value, dict) and value:
        loc.append(str(next(iter(value))))
    return ".".join(loc)


def _problem(error: ErrorDetails) -> str:
    """What the key accepts and the value given, from pydantic's error type and message.

    Type errors use the wording of :data:`_TYPE_PHRASES`; other messages are pydantic's, with ``Input
    should be`` read as ``must be`` (``must be less than 1``).
    """
    kind, value = error["type"], error.get("input")
    if kind in _TYPE_PHRASES and value is None:
        return "must not be empty"
    msg = error["msg"]
    if kind in _TYPE_PHRASES:
        msg = _TYPE_PHRASES[kind]
    elif msg.startswith("Input should be"):
        msg = "must be" + msg[len("Input should be") :]
    return f"{msg}, got {value!r}"


def from_validation_error(
    exc: ValidationError,
    known: Iterable[str],
    sources: Mapping[str, tuple[int, str | None]] | None = None,
) -> ConfigError:
    """The one-line :class:`ConfigError` for the first of ``exc``'s errors (unknown keys first).

    Args:
        exc: Raised by validating a nested config mapping against the schema.
        known: Every valid dotted key, for did-you-mean hints.
        sources: For each dotted key that was set, ``(rank, label)``: the rank orders the layers (higher set
            it later), the label names the layer (None: unlabelled).
    """
    sources = sources or {}
    known = list(known)
    errors = exc.errors(include_url=False)
    # A misspelt key is the likeliest root cause of whatever else failed: report it first.
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    if error["type"] == RULE_ERROR:
        ctx = error.get("ctx") or {}
        key, involved = str(ctx["key"]), tuple(ctx["keys"])
        line = f"config key '{key}' {ctx['rule']}, got {ctx['value']!r}"
    else:
        key = _dotted(error)
        involved = (key,)
        sections = {name.partition(".")[0]: name for name in reversed(known)}
        if error["type"] == "extra_forbidden":
            line = f"unknown config key '{key}'{suggest(key, known)}"
        elif key in sections:  # a section given a value: {"mask": 0.5}
            line = f"config key '{key}' is a section, not a value (set its keys, e.g. '{sections[key]}')"
        else:
            line = f"config key '{key}' {_problem(error)}"
    ranked = [sources[k] for k in involved if k in sources]
    source = max(ranked, key=lambda rank_label: rank_label[0])[1] if ranked else None
    return ConfigError(f"{source}: {line}" if source else line, key=key, source=source)
