"""Sweep files: a W&B-style YAML schema, validated whole before Ray starts, expanded into a trial table.

A sweep file names dotted trainer-config keys (the same paths as ``--set`` and the MLflow params) and how to
vary them; every configuration runs once per seed. Every mistake raises :class:`SpecError`, whose message is
one line naming the file and the offending key, so the CLI can exit 2 without a traceback.

This module imports neither Ray nor MLflow nor torch: ``--dry-run`` must stay fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import random
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jepa_core.config import PRESETS, Config, ConfigError, build_config, flatten, read_yaml

METHODS = ("grid", "random", "optuna")
GOALS = ("maximize", "minimize")
SCHEDULERS = ("fifo", "asha")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform")
# Metrics the trainer reports (jepa_core.train): a typo would otherwise surface only after the first epoch.
KNOWN_METRICS = tuple(
    "probe_acc knn_acc rankme feature_std train_loss img_per_s epoch_time_s eval_time_s wall_time_s lr "
    "ema_momentum context_patches_mean target_block_patches_mean collapsed".split()
)
# Scored on the test split once, after the last epoch: shown beside the validation figures, never selected on.
TEST_METRICS = ("test_probe_acc", "test_knn_acc")
TOP_KEYS = tuple(
    "name description method metric parameters seeds num_samples sampler_seed scheduler resources "
    "max_concurrent_trials max_failures tracking_uri trainer smoke expected_runtime".split()
)
_CONFIG_KEYS = frozenset(Config().to_flat())


def _is_int_key(key: str) -> bool:
    """Whether a dotted trainer key holds an integer (so only ``int_uniform`` may sample it)."""
    section, _, name = key.partition(".")
    hint = typing.get_type_hints(type(getattr(Config(), section)))[name]
    return int in (hint, *typing.get_args(hint))


class SpecError(ValueError):
    """An invalid sweep file or command-line override; the message is one line naming file and key."""


@dataclass(frozen=True)
class ParamSpec:
    """How one dotted trainer key varies: ``values``, or a ``distribution`` between ``min`` and ``max``."""

    key: str
    values: tuple[Any, ...] | None = None
    distribution: str | None = None
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        if self.values is not None:
            return f"{self.key} in {list(self.values)}"
        return f"{self.key} ~ {self.distribution}[{self.min}, {self.max}]"


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class Scheduler:
    kind: str = "fifo"
    grace_period: int = 1  # ASHA: epochs every trial runs before it may be stopped
    reduction_factor: float = 3.0


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file."""

    path: Path
    text: str
    name: str
    method: str
    metric: str
    goal: str
    parameters: tuple[ParamSpec, ...]
    seeds: tuple[int, ...]
    num_samples: int
    sampler_seed: int
    scheduler: Scheduler
    resources: Resources
    max_concurrent_trials: int | None
    max_failures: int
    tracking_uri: str | None
    preset: str | None
    overrides: dict[str, Any]
    smoke_overrides: dict[str, Any] | None  # None: the file has no smoke section
    smoke_resources: Resources
    smoke_max_concurrent_trials: int | None
    smoke_num_samples: int | None  # random/optuna: fewer configurations under --smoke
    expected_runtime: str | None
    description: str | None

    @property
    def swept_keys(self) -> list[str]:
        return [p.key for p in self.parameters]


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


def _err(path: Path, key: str, problem: str, error: type[ValueError] = SpecError) -> ValueError:
    return error(f"{path}: key '{key}': {problem}")


def _named_key(exc: ConfigError) -> str | None:
    """The dotted key a trainer ConfigError names, to blame the sweep-file entry that set it."""
    found = re.search(r"config key '([^']+)'", str(exc))
    return found.group(1) if found else None


def suggest(word: str, choices: Any) -> str:
    """`` (did you mean 'X'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_mapping(
    path: Path,
    key: str,
    value: Any,
    allowed: tuple[str, ...] | None = None,
    error: type[ValueError] = SpecError,
) -> dict[str, Any]:
    """``value`` checked to be a mapping of string keys (among ``allowed``); ``key`` "" is the top level.

    Raises ``error`` (one line naming ``path`` and the key); the nightly suite file passes its own.
    """
    if not isinstance(value, dict):
        raise _err(path, key, f"expected a mapping, got {type(value).__name__}", error)
    for sub in value:
        where = f"{key}.{sub}" if key else str(sub)
        if not isinstance(sub, str):
            raise _err(path, where, "keys must be strings", error)
        if allowed is not None and sub not in allowed:
            hint = f"unknown key{suggest(sub, allowed)}; allowed: {', '.join(allowed)}"
            raise _err(path, where, hint, error)
    return value


def _number(
    path: Path,
    key: str,
    value: Any,
    *,
    integer: bool = False,
    positive: bool = False,
    minimum: float | None = None,
) -> Any:
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
        raise _err(path, key, f"expected {kind}, got {value!r}")
    if positive and value <= 0:
        raise _err(path, key, f"must be positive, got {value!r}")
    if minimum is not None and value < minimum:
        raise _err(path, key, f"must be >= {minimum}, got {value!r}")
    return value


def _string(path: Path, key: str, value: Any, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _err(path, key, f"expected a non-empty string, got {value!r}")
    if choices is not None and value not in choices:
        raise _err(path, key, f"must be one of {', '.join(choices)}, got {value!r}{suggest(value, choices)}")
    return value


def _duplicate_keys(path: Path, text: str) -> None:
    """Rejects repeated mapping keys, which ``yaml.safe_load`` would silently collapse to the last one."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # node graph only: no object is constructed
    except yaml.YAMLError:
        return  # safe_load reports it with a line number
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise SpecError(
                            f"{path} line {key_node.start_mark.line + 1}: key '{key_node.value}' "
                            "appears twice in the same mapping"
                        )
                    seen.add(key_node.value)
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _read_yaml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        data, text = read_yaml(path, "sweep file")
    except ConfigError as exc:
        raise SpecError(str(exc)) from None
    _duplicate_keys(path, text)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a sweep file is a mapping with at least 'name', 'method', 'metric'")
    return data, text


def _overrides(path: Path, key: str, value: Any) -> dict[str, Any]:
    """Trainer overrides (nested or dotted), flattened; each key must exist in the trainer config."""
    try:
        flat = flatten(check_mapping(path, key, value))
    except ConfigError as exc:
        raise _err(path, key, str(exc)) from None
    for k in flat:
        if k not in _CONFIG_KEYS:
            raise _err(path, f"{key}.{k}", f"unknown trainer config key{suggest(k, _CONFIG_KEYS)}")
    return flat


def _param(path: Path, key: str, raw: Any, method: str) -> ParamSpec:
    where = f"parameters.{key}"
    if key not in _CONFIG_KEYS:
        raise _err(path, where, f"unknown trainer config key{suggest(key, _CONFIG_KEYS)}")
    if key == "train.seed":
        raise _err(path, where, "seeds are swept with the top-level 'seeds' list")
    body = check_mapping(path, where, raw, ("values", "distribution", "min", "max"))
    if "values" in body:
        if set(body) != {"values"}:
            raise _err(path, where, "give either 'values' or 'distribution' with 'min'/'max', not both")
        values = body["values"]
        if not isinstance(values, list) or not values:
            raise _err(path, f"{where}.values", "expected a non-empty list")
        for v in values:
            if isinstance(v, (dict, list)) or v is None:
                raise _err(path, f"{where}.values", f"expected scalar values, got {v!r}")
        if len({json.dumps(v) for v in values}) != len(values):
            raise _err(path, f"{where}.values", "repeats a value")
        return ParamSpec(key, values=tuple(values))
    if method == "grid":
        raise _err(path, where, "method grid needs 'values' (distributions are for random and optuna)")
    if "distribution" not in body:
        raise _err(path, where, "needs 'values' or 'distribution'")
    dist = _string(path, f"{where}.distribution", body["distribution"], DISTRIBUTIONS)
    integer = dist == "int_uniform"
    if _is_int_key(key) and not integer:
        raise _err(path, f"{where}.distribution", f"{key} is an integer: use int_uniform, not {dist}")
    for bound in ("min", "max"):
        if bound not in body:
            raise _err(path, f"{where}.{bound}", f"distribution {dist} needs '{bound}'")
        _number(path, f"{where}.{bound}", body[bound], integer=integer)
    lo, hi = body["min"], body["max"]
    if lo >= hi:
        raise _err(path, f"{where}.max", f"must be greater than min ({lo}), got {hi}")
    if dist == "log_uniform" and lo <= 0:
        raise _err(path, f"{where}.min", f"log_uniform needs min > 0, got {lo}")
    return ParamSpec(key, distribution=dist, min=lo, max=hi)


def _resources(path: Path, key: str, raw: Any) -> Resources:
    body = check_mapping(path, key, raw, ("cpu", "gpu"))
    cpu = _number(path, f"{key}.cpu", body.get("cpu", 1), positive=True)
    gpu = _number(path, f"{key}.gpu", body.get("gpu", 0), minimum=0)
    if gpu > 1 and gpu != int(gpu):
        raise _err(path, f"{key}.gpu", f"fractions are allowed only below 1, got {gpu}")
    return Resources(float(cpu), float(gpu))


def _scheduler(path: Path, raw: Any) -> Scheduler:
    if isinstance(raw, str):
        return Scheduler(_string(path, "scheduler", raw, SCHEDULERS))
    body = check_mapping(path, "scheduler", raw, ("type", "grace_period", "reduction_factor"))
    kind = _string(path, "scheduler.type", body.get("type"), SCHEDULERS)
    grace = _number(path, "scheduler.grace_period", body.get("grace_period", 1), integer=True, positive=True)
    factor = _number(path, "scheduler.reduction_factor", body.get("reduction_factor", 3.0))
    if factor <= 1:
        raise _err(path, "scheduler.reduction_factor", f"must be greater than 1, got {factor}")
    return Scheduler(kind, grace, float(factor))


def load_spec(path: str | Path) -> SweepSpec:
    """Reads and validates a sweep file's schema (trial configs are checked by :func:`expand_trials`).

    Raises:
        SpecError: naming the file and the first offending key.
    """
    path = Path(path)
    data, text = _read_yaml(path)
    check_mapping(path, "", data, TOP_KEYS)
    for required in ("name", "method", "metric"):
        if required not in data:
            raise _err(path, required, "is required")
    name = _string(path, "name", data["name"])
    if not all(c.isalnum() or c in "-_." for c in name):
        raise _err(path, "name", f"use letters, digits, '-', '_' or '.' (it names folders), got {name!r}")
    method = _string(path, "method", data["method"], METHODS)
    metric = check_mapping(path, "metric", data["metric"], ("name", "goal"))
    metric_name = _string(path, "metric.name", metric.get("name"))
    if metric_name in TEST_METRICS:
        raise _err(
            path,
            "metric.name",
            f"{metric_name!r} is scored on the test split, which never selects a setting; use "
            f"{metric_name.removeprefix('test_')!r} (the same score on the validation split)",
        )
    if metric_name not in KNOWN_METRICS:
        hint = suggest(metric_name, KNOWN_METRICS)
        raise _err(
            path,
            "metric.name",
            f"unknown metric {metric_name!r}{hint}; the trainer reports {', '.join(KNOWN_METRICS)}",
        )
    goal = _string(path, "metric.goal", metric.get("goal"), GOALS)

    params_raw = check_mapping(path, "parameters", data.get("parameters") or {})
    params = tuple(_param(path, k, v, method) for k, v in params_raw.items())
    if method != "grid" and not params:
        raise _err(path, "parameters", f"method {method} needs at least one parameter")

    seeds_raw = data.get("seeds", [0])
    if not isinstance(seeds_raw, list) or not seeds_raw:
        raise _err(path, "seeds", f"expected a non-empty list of integers, got {seeds_raw!r}")
    seeds = tuple(_number(path, "seeds", s, integer=True, minimum=0) for s in seeds_raw)
    if len(set(seeds)) != len(seeds):
        raise _err(path, "seeds", "repeats a seed")

    if method == "grid":
        if data.get("num_samples", 1) != 1:
            raise _err(
                path,
                "num_samples",
                "method grid runs every combination once per seed; repeat it with 'seeds', not num_samples",
            )
        num_samples = 1
    else:
        if "num_samples" not in data:
            raise _err(path, "num_samples", f"method {method} needs the number of configurations to try")
        num_samples = _number(path, "num_samples", data["num_samples"], integer=True, positive=True)
    sampler_seed = _number(path, "sampler_seed", data.get("sampler_seed", 0), integer=True, minimum=0)

    trainer = check_mapping(path, "trainer", data.get("trainer") or {}, ("preset", "overrides"))
    preset = trainer.get("preset")
    if preset is not None:
        _string(path, "trainer.preset", preset, tuple(sorted(PRESETS)))
    overrides = _overrides(path, "trainer.overrides", trainer.get("overrides") or {})

    smoke_overrides, smoke_res, smoke_conc, smoke_samples = None, Resources(1.0, 0.0), None, None
    if "smoke" in data:
        smoke_keys = ("overrides", "resources", "max_concurrent_trials", "num_samples")
        smoke = check_mapping(path, "smoke", data["smoke"] or {}, smoke_keys)
        smoke_overrides = _overrides(path, "smoke.overrides", smoke.get("overrides") or {})
        if "resources" in smoke:
            smoke_res = _resources(path, "smoke.resources", smoke["resources"])
        if smoke.get("max_concurrent_trials") is not None:
            smoke_conc = _number(
                path,
                "smoke.max_concurrent_trials",
                smoke["max_concurrent_trials"],
                integer=True,
                positive=True,
            )
        if smoke.get("num_samples") is not None:
            if method == "grid":
                raise _err(path, "smoke.num_samples", "a grid's smoke run keeps every combination and seed")
            smoke_samples = _number(
                path, "smoke.num_samples", smoke["num_samples"], integer=True, positive=True
            )
    for where, layer in (("trainer.overrides", overrides), ("smoke.overrides", smoke_overrides or {})):
        for k in layer:
            if k in params_raw or k == "train.seed":
                raise _err(path, f"{where}.{k}", "is swept by this file; remove it here")

    conc = data.get("max_concurrent_trials")
    tracking_uri = data.get("tracking_uri")
    return SweepSpec(
        path=path,
        text=text,
        name=name,
        method=method,
        metric=metric_name,
        goal=goal,
        parameters=params,
        seeds=seeds,
        num_samples=num_samples,
        sampler_seed=sampler_seed,
        scheduler=_scheduler(path, data.get("scheduler", "fifo")),
        resources=_resources(path, "resources", data.get("resources") or {}),
        max_concurrent_trials=None
        if conc is None
        else _number(path, "max_concurrent_trials", conc, integer=True, positive=True),
        max_failures=_number(path, "max_failures", data.get("max_failures", 1), integer=True, minimum=0),
        tracking_uri=None if tracking_uri is None else _string(path, "tracking_uri", tracking_uri),
        preset=preset,
        overrides=overrides,
        smoke_overrides=smoke_overrides,
        smoke_resources=smoke_res,
        smoke_max_concurrent_trials=smoke_conc,
        smoke_num_samples=smoke_samples,
        expected_runtime=None
        if data.get("expected_runtime") is None
        else _string(path, "expected_runtime", data["expected_runtime"]),
        description=None
        if data.get("description") is None
        else _string(path, "description", data["description"]),
    )


@dataclass(frozen=True)
class SweepPlan:
    """A sweep as it will run: the spec plus ``--smoke`` and ``--set``, with every trial config resolved."""

    spec: SweepSpec
    smoke: bool
    sets: dict[str, Any]
    trials: tuple[TrialSpec, ...]  # empty for optuna: configurations are suggested while the sweep runs
    resources: Resources
    max_concurrent_trials: int | None

    @property
    def num_trials(self) -> int:
        return len(self.trials) if self.trials else self.spec.num_samples * len(self.spec.seeds)

    def layers(self, params: dict[str, Any], seed: int, extra: dict[str, Any] | None = None) -> list[dict]:
        """Override layers, lowest precedence first: trainer, smoke, swept values and seed, extra, --set."""
        smoke = [self.spec.smoke_overrides or {}] if self.smoke else []
        return [self.spec.overrides, *smoke, dict(params), {"train.seed": seed}, dict(extra or {}), self.sets]

    def trial_config(self, params: dict[str, Any], seed: int, extra: dict[str, Any] | None = None) -> Config:
        """The resolved, validated trainer config of one trial (raises ConfigError)."""
        return build_config(self.spec.preset, overrides=self.layers(params, seed, extra))


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


def plan_sweep(spec: SweepSpec, *, smoke: bool = False, sets: dict[str, Any] | None = None) -> SweepPlan:
    """Applies ``--smoke`` and ``--set`` and validates every trial's trainer config before anything starts.

    Raises:
        SpecError: naming the file (or ``--set``) and the key of the first invalid trial config.
    """
    sets = dict(sets or {})
    path = spec.path
    if smoke and spec.smoke_overrides is None:
        raise _err(path, "smoke", "--smoke needs a 'smoke' section with trainer overrides in the sweep file")
    for k in sets:
        if k not in _CONFIG_KEYS:
            raise SpecError(f"--set {k}: unknown trainer config key{suggest(k, _CONFIG_KEYS)}")
        if k in spec.swept_keys or k == "train.seed":
            raise SpecError(f"--set {k}: this key is swept by {path} ('parameters' or 'seeds')")
    if smoke and spec.smoke_num_samples is not None:
        spec = dataclasses.replace(spec, num_samples=spec.smoke_num_samples)
    resources = spec.smoke_resources if smoke else spec.resources
    conc = spec.smoke_max_concurrent_trials if smoke else spec.max_concurrent_trials
    plan = SweepPlan(spec, smoke, sets, (), resources, conc)

    def check(params: dict[str, Any], seed: int) -> None:
        try:
            plan.trial_config(params, seed)
        except ConfigError as exc:
            named = _named_key(exc)
            if named in sets:
                raise SpecError(f"--set {named}: {exc}") from None
            if named in params:
                raise _err(path, f"parameters.{named}", f"value {params[named]!r}: {exc}") from None
            if smoke and named in (spec.smoke_overrides or {}):
                raise _err(path, f"smoke.overrides.{named}", str(exc)) from None
            combo = ", ".join(f"{k}={v}" for k, v in params.items())
            raise _err(path, "parameters", f"with {combo}: {exc}") from None

    try:
        build_config(spec.preset, overrides=[spec.overrides])
    except ConfigError as exc:
        named = _named_key(exc)
        where = f"trainer.overrides.{named}" if named in spec.overrides else "trainer"
        raise _err(path, where, str(exc)) from None
    if spec.smoke_overrides is not None:  # checked even without --smoke: CI's smoke run must not be the first
        try:
            build_config(spec.preset, overrides=[spec.overrides, spec.smoke_overrides])
        except ConfigError as exc:
            named = _named_key(exc)
            where = f"smoke.overrides.{named}" if named in spec.smoke_overrides else "smoke.overrides"
            raise _err(path, where, str(exc)) from None
    if spec.scheduler.kind == "asha":
        epochs = plan.trial_config({}, spec.seeds[0]).train.epochs
        if spec.scheduler.grace_period > epochs:
            raise _err(
                path,
                "scheduler.grace_period",
                f"must be <= train.epochs ({epochs}), got {spec.scheduler.grace_period}",
            )
    if spec.method == "optuna":
        # Each bound on its own, with the other parameters at their base values.
        for p in spec.parameters:
            for bound in (p.values or ()) if p.values is not None else (p.min, p.max):
                check({p.key: bound}, spec.seeds[0])
        return plan
    trials: list[TrialSpec] = []
    for params in configurations(spec):
        cid = config_id(params)
        for seed in spec.seeds:
            check(params, seed)
            trials.append(TrialSpec(len(trials), params, seed, cid))
    return SweepPlan(spec, smoke, sets, tuple(trials), resources, conc)
