"""The suite file's pydantic models: which values each field takes (strict or lax, on purpose) and which
keys an error's location allows."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.nightly.schema import (
    BenchSection,
    OverheadSection,
    QualitySection,
    SuiteFile,
    ToleranceSpec,
    keys_at,
)


def refused(model: Any, body: dict[str, Any]) -> str:
    """The first error's type when ``model`` refuses ``body``."""
    with pytest.raises(ValidationError) as err:
        model.model_validate(body)
    return err.value.errors()[0]["type"]


@pytest.mark.parametrize("value", ["10", 10.0, True])
def test_counts__are_strict_integers(value: Any) -> None:
    assert refused(BenchSection, {"cpu": {"steps": value}}) in ("int_type", "int_from_float")
    assert refused(QualitySection, {"seeds": [value]}) in ("int_type", "int_from_float")
    assert refused(SuiteFile, {"trend_nights": value}) in ("int_type", "int_from_float")


def test_counts__take_integers_within_their_range() -> None:
    body = BenchSection.model_validate({"cpu": {"steps": 1, "warmup": 0, "peak_size": 64}}).cpu
    assert body is not None and (body.steps, body.warmup, body.peak_size) == (1, 0, 64)
    assert refused(BenchSection, {"cpu": {"peak_size": 63}}) == "greater_than_equal"
    assert refused(OverheadSection, {"cpus": 0}) == "greater_than_equal"


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_enabled__is_a_strict_boolean(value: Any) -> None:
    assert refused(OverheadSection, {"enabled": value}) == "bool_type"


def test_numbers__take_integers_as_floats_and_refuse_strings_booleans_and_infinities() -> None:
    overhead = OverheadSection.model_validate({"timeout_s": 30})
    assert overhead.timeout_s == 30.0 and isinstance(overhead.timeout_s, float)
    tol = ToleranceSpec.model_validate({"abs": 0, "direction": "lower"}).tolerance()
    assert (tol.kind, tol.amount, tol.direction) == ("abs", 0.0, "lower") and isinstance(tol.amount, float)
    for value in ("30", True, math.inf):
        assert refused(OverheadSection, {"timeout_s": value}) in ("float_type", "finite_number")
    for value in ("0.1", False, math.nan):
        assert refused(ToleranceSpec, {"rel": value, "direction": "higher"}) in (
            "float_type",
            "finite_number",
        )
    assert refused(OverheadSection, {"timeout_s": 0}) == "greater_than"


def test_names__are_strict_strings() -> None:
    assert refused(SuiteFile, {"description": 5}) == "string_type"
    assert refused(SuiteFile, {"experiment": 5}) == "string_type"
    assert refused(QualitySection, {"preset": 3}) == "string_type"
    assert refused(OverheadSection, {"storage_path": 3}) == "string_type"
    assert refused(OverheadSection, {"storage_path": "  "}) == "nightly_suite"
    assert refused(SuiteFile, {"experiment": "a b"}) == "nightly_suite"


def test_overrides__nested_or_dotted_values_pass_on_as_written() -> None:
    nested = QualitySection.model_validate({"overrides": {"mask": {"ratio": 0.3}, "train.epochs": 2}})
    assert nested.overrides == {"mask.ratio": 0.3, "train.epochs": 2}
    assert type(nested.overrides["train.epochs"]) is int  # the trainer config coerces, not the suite
    assert QualitySection.model_validate({"overrides": None}).overrides == {}


def test_sections__a_disabled_section_is_checked_all_the_same() -> None:
    assert refused(OverheadSection, {"enabled": False, "cpus": "x"}) == "int_type"
    assert refused(QualitySection, {"enabled": False, "overrides": {"mask.ratoi": 0.3}}) == "nightly_suite"


def test_sections__empty_or_null_mean_no_section_and_a_null_device_its_defaults() -> None:
    assert SuiteFile.model_validate({"quality": {}, "overhead": None}).quality is None
    bench = SuiteFile.model_validate({"bench": {"cpu": None}}).bench
    assert bench.cpu is not None and bench.cpu.steps == 10 and bench.cuda is None
    assert SuiteFile.model_validate({"bench": None, "tolerances": None, "smoke": None}).tolerances == {}


def test_tolerance__exactly_one_kind_and_a_direction() -> None:
    assert refused(ToleranceSpec, {"rel": 0.1, "abs": 0.1, "direction": "higher"}) == "nightly_suite"
    assert refused(ToleranceSpec, {"direction": "higher"}) == "nightly_suite"
    assert refused(ToleranceSpec, {"rel": 0.1}) == "missing"
    assert refused(ToleranceSpec, {"rel": 0.1, "direction": "up"}) == "literal_error"


def test_models__forbid_unknown_keys() -> None:
    assert refused(SuiteFile, {"colour": "blue"}) == "extra_forbidden"
    assert refused(SuiteFile, {"smoke": {"qualty": {}}}) == "extra_forbidden"
    assert refused(ToleranceSpec, {"rel": 0.1, "direction": "higher", "x": 1}) == "extra_forbidden"


def test_keys_at__the_keys_a_location_allows() -> None:
    assert keys_at(SuiteFile, ("bench",)) == ("enabled", "cpu", "cuda")
    assert keys_at(SuiteFile, ("bench", "cpu")) == (
        *("enabled", "preset", "overrides", "steps", "warmup", "peak_size"),
    )
    assert keys_at(SuiteFile, ("tolerances", "quality.probe_acc")) == ("rel", "abs", "direction")
    assert keys_at(SuiteFile, ("smoke",)) == ("bench", "quality", "overhead", "tolerances")
    assert keys_at(SuiteFile, ("quality", "overrides")) == ()
    assert keys_at(SuiteFile, ("no_such",)) == ()
