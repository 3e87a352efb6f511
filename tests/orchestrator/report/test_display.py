"""Tests of how the report shows values."""

from __future__ import annotations

from orchestrator.report import display


def test_display_labels__shortest_text_that_keeps_values_apart() -> None:
    names = display.display_labels([0.4195254015709299, 0.375034884505077, 0.41953, 3, None, "l2"])
    # 0.4195 would merge the first and third: 6 significant digits are the fewest that keep them apart.
    assert names["0.4195254015709299"] == "0.419525" and names["0.41953"] == "0.41953"
    assert names["0.375034884505077"] == "0.375035"
    assert (names["3"], names["None"], names["l2"]) == ("3", "None", "l2")
    assert display.display_labels([0.9957262520726806, 0.9991547962247598]) == {
        "0.9957262520726806": "0.9957",
        "0.9991547962247598": "0.9992",
    }
