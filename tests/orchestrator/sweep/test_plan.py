"""Trial expansion: grids and random draws times seeds, the override layers, ``--set`` checked early."""

from __future__ import annotations

from pathlib import Path

import pytest

from jepa_core.config import PRESETS
from orchestrator.sweep.plan import plan_sweep
from orchestrator.sweep.spec import SpecError, load_spec
from tests.orchestrator.sweep.test_spec import BASE, write


def test_plan_sweep__grid_expands_configs_times_seeds(tmp_path: Path) -> None:
    plan = plan_sweep(load_spec(write(tmp_path, BASE)))
    assert plan.num_trials == 2 * 2 * 3
    assert [t.index for t in plan.trials] == list(range(12))
    combos = {(t.params["mask.ratio"], t.params["predictor.depth"], t.seed) for t in plan.trials}
    assert len(combos) == 12
    by_config: dict[str, set[int]] = {}
    for t in plan.trials:
        by_config.setdefault(t.config_id, set()).add(t.seed)
    assert len(by_config) == 4 and all(seeds == {0, 1, 2} for seeds in by_config.values())


def test_plan_sweep__layers_preset_overrides_smoke_then_set(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE))
    plan = plan_sweep(spec, profile="smoke", sets={"train.epochs": 2, "optim.lr": 0.01})
    t = plan.trials[5]
    cfg = plan.trial_config(t.params, t.seed).to_flat()
    preset = PRESETS["fmnist_cpu"]
    assert (cfg["model.embed_dim"], cfg["model.depth"]) == (preset["model.embed_dim"], preset["model.depth"])
    assert cfg["data.subset"] == 500  # smoke
    assert cfg["train.epochs"] == 2  # --set beats the smoke and trainer overrides
    assert cfg["optim.lr"] == 0.01
    assert (cfg["mask.ratio"], cfg["predictor.depth"], cfg["train.seed"]) == (
        t.params["mask.ratio"],
        t.params["predictor.depth"],
        t.seed,
    )
    assert plan_sweep(spec).trial_config(t.params, t.seed).train.epochs == 3


def test_plan_sweep__random_is_seeded_and_shared_by_seeds(tmp_path: Path) -> None:
    text = (
        BASE.replace("method: grid", "method: random\nnum_samples: 4")
        .replace(
            "mask.ratio: {values: [0.3, 0.5]}", "mask.ratio: {distribution: uniform, min: 0.2, max: 0.6}"
        )
        .replace(
            "predictor.depth: {values: [1, 2]}",
            "predictor.depth: {distribution: int_uniform, min: 1, max: 3}",
        )
    )
    text = text.replace("smoke:\n", "smoke:\n  num_samples: 2\n")
    path = write(tmp_path, text)
    first, again = plan_sweep(load_spec(path)), plan_sweep(load_spec(path))
    assert first.trials == again.trials and first.num_trials == 12
    for t in first.trials:
        assert 0.2 <= t.params["mask.ratio"] <= 0.6 and t.params["predictor.depth"] in (1, 2, 3)
    configs = [t.params for t in first.trials if t.seed == 0]
    assert [t.params for t in first.trials if t.seed == 2] == configs
    smoke = plan_sweep(load_spec(path), profile="smoke")
    assert smoke.num_trials == 6 and [t.params for t in smoke.trials if t.seed == 0] == configs[:2]


def test_plan_sweep__optuna_counts_suggestions_times_seeds(tmp_path: Path) -> None:
    text = BASE.replace("method: grid", "method: optuna\nnum_samples: 5\nscheduler: asha").replace(
        "mask.ratio: {values: [0.3, 0.5]}", "mask.ratio: {distribution: uniform, min: 0.2, max: 0.6}"
    )
    plan = plan_sweep(load_spec(write(tmp_path, text)))
    assert plan.trials == () and plan.num_trials == 15 and plan.spec.scheduler.kind == "asha"


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ({"mask.ratio": 0.2}, "--set mask.ratio"),
        ({"train.seed": 3}, "--set train.seed"),
        ({"model.dept": 3}, "--set model.dept"),
        ({"train.epochs": -1}, "--set"),
    ],
)
def test_plan_sweep__bad_set_is_named(tmp_path: Path, sets: dict, expected: str) -> None:
    with pytest.raises(SpecError, match=expected.replace(".", r"\.")):
        plan_sweep(load_spec(write(tmp_path, BASE)), sets=sets)


def test_plan_sweep__smoke_needs_a_smoke_section(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.split("smoke:")[0])
    with pytest.raises(SpecError, match="'smoke'"):
        plan_sweep(load_spec(path), profile="smoke")
