"""The coercion decisions documented in jepa_core.config.fields, one test per case."""

from __future__ import annotations

import pytest

from jepa_core.config import ConfigError, build_config, parse_set


def _value(key, value):
    section, _, name = key.partition(".")
    return getattr(getattr(build_config(overrides=[{key: value}]), section), name)


@pytest.mark.parametrize(("value", "expected"), [(3, 3), (3.0, 3), ("3", 3)])
def test_int__takes_integers_integral_floats_and_numeric_strings(value, expected):
    out = _value("train.epochs", value)
    assert out == expected and type(out) is int


@pytest.mark.parametrize("value", [2.5, "2.5", True, False, "three", [2]])
def test_int__refuses_fractions_booleans_and_words(value):
    with pytest.raises(ConfigError, match=r"config key 'train\.epochs' expects an integer"):
        _value("train.epochs", value)


def test_int__a_yaml_fraction_in_a_file_is_refused_not_truncated(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("train:\n  epochs: 2.5\n")
    with pytest.raises(
        ConfigError, match=r"run\.yaml: config key 'train\.epochs' expects an integer, got 2\.5"
    ):
        build_config(files=[f])


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), (0.002, 0.002), ("1e-3", 0.001), ("0.5", 0.5)])
def test_float__takes_numbers_and_numeric_strings(value, expected):
    out = _value("optim.lr", value)
    assert out == expected and type(out) is float


def test_float__set_with_yaml_1_1_exponent_reads_as_a_number():
    # PyYAML reads 1e-3 (no dot) as a string; the schema still reads it as 0.001.
    assert parse_set(["optim.lr=1e-3"]) == {"optim.lr": "1e-3"}
    assert build_config(overrides=[parse_set(["optim.lr=1e-3"])]).optim.lr == 0.001


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "expects a number"),
        ("fast", "expects a number"),
        (float("inf"), "must be finite"),
        ("nan", "must be finite"),
    ],
)
def test_float__refuses_booleans_words_and_non_finite(value, expected):
    with pytest.raises(ConfigError, match=rf"config key 'optim\.lr' {expected}"):
        _value("optim.lr", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("yes", True),
        ("no", False),
        ("on", True),
    ],
)
def test_flag__takes_booleans_and_boolean_words(value, expected):
    assert _value("train.compile", value) is expected


@pytest.mark.parametrize("value", [1, 0, "1", "0", 0.0, "maybe", None])
def test_flag__refuses_numbers_quoted_or_not(value):
    with pytest.raises(
        ConfigError, match=r"config key 'train\.compile' (expects true or false|must not be empty)"
    ):
        _value("train.compile", value)


def test_flag__set_values():
    assert build_config(overrides=[parse_set(["train.compile=true"])]).train.compile is True
    with pytest.raises(
        ConfigError, match=r"^--set: config key 'train\.compile' expects true or false, got 1$"
    ):
        build_config(overrides=[parse_set(["train.compile=1"])])


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("none", None), ("None", None), ("null", None), (7, 7)]
)
def test_optional_int__takes_null_and_none_words(value, expected):
    assert _value("data.subset", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("/data", "/data"), (2024, "2024"), (None, None), ("None", None)]
)
def test_path__takes_strings_numbers_as_digits_and_null(value, expected):
    assert _value("data.root", value) == expected


def test_path__refuses_booleans():
    with pytest.raises(ConfigError, match=r"config key 'data\.root' expects a string, got True"):
        _value("data.root", True)


@pytest.mark.parametrize(("key", "value"), [("train.device", 0), ("loss.kind", 1), ("data.name", None)])
def test_choice__refuses_non_strings(key, value):
    with pytest.raises(ConfigError, match=rf"config key '{key}'"):
        _value(key, value)


@pytest.mark.parametrize("key", ["train.epochs", "optim.lr", "train.device"])
def test_required__null_is_empty(key):
    with pytest.raises(ConfigError, match=rf"^config key '{key}' must not be empty$"):
        _value(key, None)
