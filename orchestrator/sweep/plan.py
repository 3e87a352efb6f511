"""A sweep as it will run: the spec in one profile (gpu, cpu, smoke) plus ``--set``, every trial resolved.

:func:`plan_sweep` builds the trainer config of every trial before anything starts, so a value the trainer
refuses (``mask.ratio: 1.5``, ``model.num_heads`` that does not divide ``model.embed_dim``) is reported at
once, blamed on the sweep-file entry or ``--set`` that set it. Imports neither Ray nor MLflow nor torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from jepa_core.config import Config, ConfigError, build_config
from orchestrator.sweep.errors import SpecError, key_error, suggest
from orchestrator.sweep.fields import CONFIG_KEYS
from orchestrator.sweep.spec import ParamSpec, Profile, Resources, SweepSpec

TRIAL_INDEX = "__trial_index__"  # set by repeat.SeedRepeater, as by Tune's Repeater: which seed this is


@dataclass(frozen=True)
class TrialSpec:
    """One row of the trial table: a configuration (its swept values) and a seed."""

    index: int
    params: dict[str, Any]
    seed: int
    config_id: str = field(default="")


def config_id(params: dict[str, Any]) -> str:
    """A short stable id of a configuration's swept values, shared by its seeds (report groups by it)."""
    blob = json.dumps(sorted(params.items()), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class SweepPlan:
    """A sweep as it will run: the spec in one profile plus ``--set``, with every trial config resolved."""

    spec: SweepSpec
    profile: Profile
    sets: dict[str, Any]
    trials: tuple[TrialSpec, ...]  # empty for optuna: configurations are suggested while the sweep runs
    resources: Resources
    max_concurrent_trials: int | None

    @property
    def smoke(self) -> bool:
        return self.profile.name == "smoke"

    @property
    def num_trials(self) -> int:
        return len(self.trials) if self.trials else self.spec.num_samples * len(self.spec.seeds)

    def layers(self, params: dict[str, Any], seed: int, extra: dict[str, Any] | None = None) -> list[dict]:
        """Override layers, lowest precedence first: trainer, the profile's section, swept values and seed,
        extra, --set."""
        section = [self.profile.overrides] if self.profile.section else []
        seeded = {"train.seed": seed}
        return [self.spec.overrides, *section, dict(params), seeded, dict(extra or {}), self.sets]

    def trial_config(self, params: dict[str, Any], seed: int, extra: dict[str, Any] | None = None) -> Config:
        """The resolved, validated trainer config of one trial (raises ConfigError)."""
        return build_config(self.spec.preset, overrides=self.layers(params, seed, extra))


def trial_params(config: dict[str, Any], plan: SweepPlan) -> tuple[dict[str, Any], int]:
    """A Tune trial config -> (swept values, seed), for either shape of ``tuner.search_space``: grid and
    random trials carry ``params`` and ``seed``; an optuna trial carries its suggested values by key and the
    SeedRepeater's index of its seed."""
    if "params" in config:
        return dict(config["params"]), int(config["seed"])
    params = {k: config[k] for k in plan.spec.swept_keys}
    return params, plan.spec.seeds[int(config.get(TRIAL_INDEX, 0))]


def trial_label(params: dict[str, Any], seed: int) -> str:
    """Human-readable run name: ``mask.ratio=0.4 seed=1``."""

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return " ".join([*(f"{k}={fmt(v)}" for k, v in params.items()), f"seed={seed}"])


def _sample(param: ParamSpec, rng: random.Random) -> Any:
    if param.values is not None:
        return rng.choice(param.values)
    assert param.min is not None and param.max is not None
    if param.distribution == "int_uniform":  # both ends included, as in W&B sweeps
        return rng.randint(int(param.min), int(param.max))
    # Four significant digits: readable in tables and run names, far finer than any effect we could measure.
    if param.distribution == "log_uniform":
        return float(f"{math.exp(rng.uniform(math.log(param.min), math.log(param.max))):.4g}")
    return float(f"{rng.uniform(param.min, param.max):.4g}")


def configurations(spec: SweepSpec) -> list[dict[str, Any]]:
    """The swept values of each configuration (grid: the product; random: ``num_samples`` seeded draws).

    Random draws are made here, not by Tune, so that every seed of a configuration shares its values and
    ``--dry-run`` shows exactly what will run.
    """
    if spec.method == "grid":
        keys = spec.swept_keys
        combos = itertools.product(*(p.values or () for p in spec.parameters))
        return [dict(zip(keys, combo, strict=True)) for combo in combos]
    if spec.method == "random":
        rng = random.Random(spec.sampler_seed)
        return [{p.key: _sample(p, rng) for p in spec.parameters} for _ in range(spec.num_samples)]
    return []


def config_error_key(exc: ConfigError) -> str | None:
    """The dotted key a trainer ConfigError names (its ``key``, or its message's ``config key 'x.y'``)."""
    key = getattr(exc, "key", None)
    if isinstance(key, str) and key:
        return key
    found = re.search(r"config key '([^']+)'", str(exc))
    return found.group(1) if found else None


def _check_sets(spec: SweepSpec, sets: dict[str, Any]) -> None:
    for k in sets:
        if k not in CONFIG_KEYS:
            raise SpecError(f"--set {k}: unknown trainer config key{suggest(k, CONFIG_KEYS)}")
        if k in spec.swept_keys or k == "train.seed":
            raise SpecError(f"--set {k}: this key is swept by {spec.path} ('parameters' or 'seeds')")


def _check_base_configs(spec: SweepSpec) -> None:
    """The trainer section alone, and with each profile section's overrides, builds a valid trainer config.

    Every section is checked whichever profile runs: CI's smoke run, or a user's first CPU run, must not be
    where a mistake in it is found.
    """
    path = spec.path
    try:
        build_config(spec.preset, overrides=[spec.overrides])
    except ConfigError as exc:
        named = config_error_key(exc)
        where = f"trainer.overrides.{named}" if named in spec.overrides else "trainer"
        raise key_error(path, where, str(exc)) from None
    for profile in spec.profiles.values():
        if profile.section is None:
            continue
        try:
            build_config(spec.preset, overrides=[spec.overrides, profile.overrides])
        except ConfigError as exc:
            named = config_error_key(exc)
            sec = profile.section
            where = f"{sec}.overrides.{named}" if named in profile.overrides else f"{sec}.overrides"
            raise key_error(path, where, str(exc)) from None


def _check_trial(plan: SweepPlan, params: dict[str, Any], seed: int) -> None:
    """One trial's config builds; otherwise the error blames ``--set``, the swept value or the section."""
    path = plan.spec.path
    try:
        plan.trial_config(params, seed)
    except ConfigError as exc:
        named = config_error_key(exc)
        if named in plan.sets:
            raise SpecError(f"--set {named}: {exc}") from None
        if named in params:
            raise key_error(path, f"parameters.{named}", f"value {params[named]!r}: {exc}") from None
        if plan.profile.section and named in plan.profile.overrides:
            raise key_error(path, f"{plan.profile.section}.overrides.{named}", str(exc)) from None
        combo = ", ".join(f"{k}={v}" for k, v in params.items())
        raise key_error(path, "parameters", f"with {combo}: {exc}") from None


def missing_profile(spec: SweepSpec, profile: str) -> str | None:
    """Why ``spec`` cannot run ``profile`` (one line, without the file name), or None when it can."""
    if profile in spec.profiles:
        return None
    if profile == "smoke":
        return "key 'smoke': --smoke needs a 'smoke' section with trainer overrides in the sweep file"
    if profile == "gpu":
        return (
            "--profile gpu: this sweep's trials ask for no GPU (resources.gpu is 0); the file as written is "
            "its cpu profile"
        )
    return (
        "--profile cpu: the sweep file has no 'cpu' section (trainer overrides, resources) sizing it for a "
        "machine without a GPU; add one, or leave out --profile to run the file as written"
    )


def plan_sweep(
    spec: SweepSpec, *, profile: str | None = None, sets: dict[str, Any] | None = None
) -> SweepPlan:
    """Applies a profile and ``--set`` and validates every trial's trainer config before anything starts.

    ``profile``: ``gpu``, ``cpu`` or ``smoke`` (:data:`orchestrator.sweep.spec.PROFILES`); None is the file
    as written (:attr:`SweepSpec.main_profile`).

    Raises:
        SpecError: naming the file (or ``--set``) and the key of the first invalid trial config.
    """
    sets = dict(sets or {})
    path = spec.path
    name = profile or spec.main_profile
    problem = missing_profile(spec, name)
    if problem:
        raise SpecError(f"{path}: {problem}")
    chosen = spec.profiles[name]
    _check_sets(spec, sets)
    if chosen.num_samples is not None:
        spec = dataclasses.replace(spec, num_samples=chosen.num_samples)
    plan = SweepPlan(spec, chosen, sets, (), chosen.resources, chosen.max_concurrent_trials)
    _check_base_configs(spec)
    if spec.scheduler.kind == "asha":
        epochs = plan.trial_config({}, spec.seeds[0]).train.epochs
        if spec.scheduler.grace_period > epochs:
            raise key_error(
                path,
                "scheduler.grace_period",
                f"must be <= train.epochs ({epochs}), got {spec.scheduler.grace_period}",
            )
    if spec.method == "optuna":
        # Each bound on its own, with the other parameters at their base values.
        for p in spec.parameters:
            for bound in (p.values or ()) if p.values is not None else (p.min, p.max):
                _check_trial(plan, {p.key: bound}, spec.seeds[0])
        return plan
    trials: list[TrialSpec] = []
    for params in configurations(spec):
        cid = config_id(params)
        for seed in spec.seeds:
            _check_trial(plan, params, seed)
            trials.append(TrialSpec(len(trials), params, seed, cid))
    return dataclasses.replace(plan, trials=tuple(trials))
