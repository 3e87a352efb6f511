"""The rolling-median baseline and baseline files."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.nightly.baseline import BaselineError, read_baseline, rolling_median, write_baseline


def test_rolling_median__newest_window_only_and_per_metric() -> None:
    nights = [{"a": 1.0, "b": 10.0}, {"a": 3.0}, {"a": 2.0, "b": 30.0}, {"a": 100.0, "b": 100.0}]
    assert rolling_median(nights, 3) == {"a": 2.0, "b": 20.0}
    assert rolling_median(nights, 1) == {"a": 1.0, "b": 10.0}
    with pytest.raises(ValueError):
        rolling_median(nights, 0)


def test_baseline_file__round_trip(tmp_path: Path) -> None:
    path = write_baseline(tmp_path / "b.json", {"x.y": 1.5, "x.z": 2}, {"device": "cpu:test x2"})
    metrics, meta = read_baseline(path)
    assert metrics == {"x.y": 1.5, "x.z": 2.0} and meta == {"device": "cpu:test x2"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"other": {}}', "'metrics' is required"),
        ('{"metrics": {}}', "non-empty"),
        ('{"metrics": {"a.b": "fast"}}', "metrics.a.b"),
        ('{"metrics": {"a.b": true}}', "metrics.a.b"),
        ('{"metrics": {"a.b": NaN}}', "finite"),
    ],
)
def test_baseline_file__invalid_is_one_line_naming_the_member(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(BaselineError) as err:
        read_baseline(path)
    assert fragment in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
