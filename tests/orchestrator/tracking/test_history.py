from __future__ import annotations

import math

from orchestrator.tracking import history


def test_add_epoch__keeps_the_report_keys_and_replaces_a_replayed_epoch() -> None:
    curves: history.Curves = {}
    history.add_epoch(curves, 1, {"train_loss": 2.0, "probe_acc": 0.5, "lr": 0.1})
    history.add_epoch(curves, 2, {"train_loss": 1.5})
    history.add_epoch(curves, 2, {"train_loss": 1.4})  # a resumed trial reports its last epoch again
    assert curves == {"train_loss": [(1, 2.0), (2, 1.4)], "probe_acc": [(1, 0.5)]}


def test_encode_decode__round_trip_with_nan_and_refuses_what_a_tag_cannot_hold() -> None:
    curves = {"train_loss": [(1, 2.0), (2, math.nan)], "rankme": [(1, 30.25)]}
    back = history.decode(history.encode(curves))
    assert back is not None and back["rankme"] == [(1, 30.25)] and math.isnan(back["train_loss"][1][1])
    long = {"train_loss": [(e, 1.0 / 3) for e in range(1, 2000)]}
    assert history.encode(long) is None
    assert history.decode("") is None and history.decode(None) is None and history.decode("{not json") is None
