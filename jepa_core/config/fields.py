"""The scalar types of config fields, and how strictly each one coerces its input.

Values reach the schema as YAML scalars: from config files, from sweep files, and from ``--set KEY=VALUE``,
whose value is parsed as a YAML scalar too. Pydantic's lax mode is kept where YAML's own typing would
otherwise bite and tightened where it would hide a mistake:

- :data:`Int`: an integer, an integral float (``2.0`` -> 2) or a numeric string (``"3"``); a fractional
  value (``epochs: 2.5``) and a boolean are refused, never rounded or read as 0/1.
- :data:`Float`: a number or a numeric string (PyYAML reads ``1e-3`` without a dot as the *string*
  ``"1e-3"``, so ``--set optim.lr=1e-3`` must still work); an integer becomes a float (``1`` -> ``1.0``);
  booleans and non-finite values (``.nan``, ``.inf``) are refused.
- :data:`Flag`: a YAML boolean (``true``/``false``, ``yes``/``no``, ``on``/``off``, any case) or the same word
  quoted; numbers are refused, quoted or not (``1``/``"0"``): a number in a flag is more likely a value meant
  for another key than a boolean.
- :data:`PathStr`: a string; a number is read as its digits (``--set data.root=2024`` names the folder
  ``2024``), a boolean is refused.
- Strings that name a choice (``data.name``, ``loss.kind``, ``train.device``) take strings only.
- ``Optional`` fields (:data:`OptionalInt`, :data:`OptionalPathStr`) also take ``null``/``~`` and, as before,
  the words ``none`` and ``null`` in any case (``--set data.subset=None`` reads ``None`` as a string).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Strict
from pydantic_core import PydanticKnownError

_TRUE_WORDS = frozenset({"true", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "no", "off"})
_NONE_WORDS = frozenset({"none", "null"})


def _refuse_bool_int(value: Any) -> Any:
    # bool is a subclass of int: lax mode would read `epochs: true` as 1.
    if isinstance(value, bool):
        raise PydanticKnownError("int_type")
    return value


def _refuse_bool_float(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticKnownError("float_type")
    return value


def _flag_words(value: Any) -> Any:
    """Boolean words (quoted in YAML or not) as bools; anything else is left to the strict bool check."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return value


def _path_text(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticKnownError("string_type")
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _none_words(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
        return None
    return value


Int = Annotated[int, BeforeValidator(_refuse_bool_int)]
Float = Annotated[float, BeforeValidator(_refuse_bool_float)]
Flag = Annotated[bool, Strict(), BeforeValidator(_flag_words)]
PathStr = Annotated[str, BeforeValidator(_path_text)]
OptionalInt = Annotated[Int | None, BeforeValidator(_none_words)]
OptionalPathStr = Annotated[PathStr | None, BeforeValidator(_none_words)]
