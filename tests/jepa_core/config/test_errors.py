from __future__ import annotations

import pickle
import re

import pytest

from jepa_core.config import ConfigError, build_config, parse_set, suggest


def test_config_error__is_a_value_error_with_key_and_source():
    err = ConfigError("x")
    assert isinstance(err, ValueError) and (err.key, err.source) == (None, None)


def test_config_error__key_and_source_survive_pickling():
    # Ray ships exceptions between processes.
    with pytest.raises(ConfigError) as caught:
        build_config(overrides=[parse_set(["mask.ratio=2"])])
    back = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes, just written
    assert (str(back), back.key, back.source) == (str(caught.value), "mask.ratio", "--set")


def test_config_error__message_holds_the_quoted_dotted_key():
    # The sweep spec and nightly suite find the key with this pattern to blame their own file's entry.
    with pytest.raises(ConfigError) as caught:
        build_config(overrides=[{"model.num_heads": 5}])
    assert (
        re.search(r"config key '([^']+)'", str(caught.value)).group(1)
        == caught.value.key
        == "model.num_heads"
    )


def test_config_error__unknown_key_first_among_several_errors():
    with pytest.raises(ConfigError) as caught:
        build_config(overrides=[{"mask.ratio": 2, "mask.ratoi": 0.5}])
    assert caught.value.key == "mask.ratoi"


def test_config_error__a_section_given_a_value():
    with pytest.raises(ConfigError, match=r"config key 'mask' is a section, not a value .*'mask\.ratio'"):
        build_config(overrides=[{"mask": 0.5}])


@pytest.mark.parametrize(
    ("key", "hint"), [("model.dept", "model.depth"), ("trian.epochs", "train.epochs"), ("zzz.qqq", None)]
)
def test_config_error__did_you_mean(key, hint):
    with pytest.raises(ConfigError) as caught:
        build_config(overrides=[{key: 1}])
    expected = f"unknown config key '{key}'" + (f" (did you mean '{hint}'?)" if hint else "")
    assert str(caught.value) == expected


def test_suggest__empty_when_nothing_is_close():
    assert suggest("qqq", ["mask.ratio"]) == ""
