"""Sweep files: a W&B-style YAML schema as pydantic models, validated whole before Ray starts.

A sweep file names dotted trainer-config keys (the same paths as ``--set`` and the MLflow params) and how to
vary them; every configuration runs once per seed. :func:`load_spec` reads the file, rejects repeated keys,
validates it against :class:`SweepFile` and returns the :class:`SweepSpec` the rest of the sweep reads. Every
mistake raises :class:`SpecError`, whose message is one line naming the file and the offending key, so the
CLI can exit 2 without a traceback.

Coercion is chosen per field. Counts, seeds and resources are strict: ``num_samples: "4"``, ``seeds: [0,
1.5]``, ``seeds: [true]`` and ``cpu: "2"`` are mistakes, not numbers. Distribution bounds accept numeric
strings, because YAML 1.1 (PyYAML) reads ``1e-3`` without a dot as the string ``"1e-3"``; they refuse
booleans. Swept ``values`` are passed on as written: the trainer's config schema decides what each key takes.

This module imports neither Ray nor MLflow nor torch: ``--dry-run`` must stay fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jepa_core.config import PRESETS, ConfigError, read_yaml
from orchestrator.sweep.errors import KeyedError, SpecError, error_line, one_of, suggest
from orchestrator.sweep.fields import (
    EMPTY_IF_NONE,
    Bound,
    Count,
    NonNegativeInt,
    Number,
    Overrides,
    SweptKey,
    Text,
    is_int_key,
    scheduler_shorthand,
)

__all__ = ["SpecError", "suggest"]  # re-exported: orchestrator.nightly imports suggest from here

# Metrics the trainer reports (jepa_core.train): a typo would otherwise surface only after the first epoch.
KNOWN_METRICS = tuple(
    "probe_acc knn_acc rankme feature_std train_loss img_per_s epoch_time_s eval_time_s wall_time_s lr "
    "ema_momentum context_patches_mean target_block_patches_mean collapsed".split()
)
# How a sweep can be sized (--profile): "gpu" is the file as written when its trials ask for a GPU; "cpu" is
# its cpu section (or the file as written when its trials ask for none); "smoke" is its smoke section.
PROFILES = ("gpu", "cpu", "smoke")
SECTION_PROFILES = ("cpu", "smoke")
# Scored on the test split once, after the last epoch: shown beside the validation figures, never selected on.
TEST_METRICS = ("test_probe_acc", "test_knn_acc")


# ---- the schema --------------------------------------------------------------------------------------
class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Schema):
    """What each trial asks Ray for: CPUs, and GPUs (fractions below 1 share one)."""

    cpu: Annotated[Number, Field(gt=0)] = 1.0
    gpu: Annotated[Number, Field(ge=0)] = 0.0

    @field_validator("gpu")
    @classmethod
    def _whole_above_one(cls, gpu: float) -> float:
        if gpu > 1 and gpu != int(gpu):
            raise ValueError(f"fractions are allowed only below 1, got {gpu}")
        return gpu


class Scheduler(_Schema):
    """fifo runs every trial to the end; asha stops the worse trials early (after ``grace_period`` epochs)."""

    kind: Literal["fifo", "asha"] = Field(alias="type")
    grace_period: Count = 1  # ASHA: epochs every trial runs before it may be stopped
    reduction_factor: Annotated[Number, Field(gt=1)] = 3.0


class MetricSpec(_Schema):
    name: Text
    goal: Literal["maximize", "minimize"]

    @field_validator("name")
    @classmethod
    def _reported_on_validation(cls, name: str) -> str:
        if name in TEST_METRICS:
            raise ValueError(
                f"{name!r} is scored on the test split, which never selects a setting; use "
                f"{name.removeprefix('test_')!r} (the same score on the validation split)"
            )
        if name not in KNOWN_METRICS:
            hint = suggest(name, KNOWN_METRICS)
            raise ValueError(f"unknown metric {name!r}{hint}; the trainer reports {', '.join(KNOWN_METRICS)}")
        return name


class Parameter(_Schema):
    """One swept key: ``values``, or a ``distribution`` between ``min`` and ``max``."""

    values: Annotated[list[Any], Field(min_length=1)] | None = None
    distribution: Literal["uniform", "log_uniform", "int_uniform"] | None = None
    min: Bound | None = None
    max: Bound | None = None

    @field_validator("values")
    @classmethod
    def _distinct_scalars(cls, values: list[Any] | None) -> list[Any] | None:
        for v in values or ():
            if isinstance(v, (dict, list)) or v is None:
                raise ValueError(f"expected scalar values, got {v!r}")
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"values must be finite, got {v!r}")
        if values is not None and len({json.dumps(v) for v in values}) != len(values):
            raise ValueError("repeats a value")
        return values

    @model_validator(mode="after")
    def _values_or_bounded_distribution(self) -> Parameter:
        given = self.model_fields_set
        if "values" in given:
            if given != {"values"}:
                raise KeyedError(None, "give either 'values' or 'distribution' with 'min'/'max', not both")
            return self
        if self.distribution is None:
            raise KeyedError(None, "needs 'values' or 'distribution'")
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is None:
                raise KeyedError(bound, f"distribution {self.distribution} needs '{bound}'")
            if self.distribution == "int_uniform" and not isinstance(value, int):
                raise KeyedError(bound, f"expected an integer, got {value!r}")
        assert self.min is not None and self.max is not None
        if self.min >= self.max:
            raise KeyedError("max", f"must be greater than min ({self.min}), got {self.max}")
        if self.distribution == "log_uniform" and self.min <= 0:
            raise KeyedError("min", f"log_uniform needs min > 0, got {self.min}")
        return self


class TrainerSection(_Schema):
    """The base trainer config of every trial: a preset, then dotted (or nested) overrides."""

    preset: str | None = None
    overrides: Overrides = {}

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str | None) -> str | None:
        if preset is not None and preset not in PRESETS:
            raise ValueError(one_of(preset, sorted(PRESETS)))
        return preset


class ProfileSection(_Schema):
    """A sized variant of the sweep (``cpu:`` or ``smoke:``): trainer overrides applied on top of ``trainer``,
    the trials' resources and concurrency, fewer random configurations, and its measured runtime."""

    overrides: Overrides = {}
    resources: Annotated[Resources, EMPTY_IF_NONE] = Resources()
    max_concurrent_trials: Count | None = None
    num_samples: Count | None = None  # random/optuna only: a grid's sized run keeps every combination
    expected_runtime: Text | None = None


class SweepFile(_Schema):
    """A sweep file as written. Fields are in the order the unknown-key message lists them."""

    name: Text
    description: Text | None = None
    method: Literal["grid", "random", "optuna"]
    metric: MetricSpec
    parameters: Annotated[dict[SweptKey, Parameter], EMPTY_IF_NONE] = {}
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)] = [0]
    num_samples: Count | None = None
    sampler_seed: NonNegativeInt = 0
    scheduler: Annotated[Scheduler, BeforeValidator(scheduler_shorthand)] = Scheduler.model_validate(
        {"type": "fifo"}
    )
    resources: Annotated[Resources, EMPTY_IF_NONE] = Resources()
    max_concurrent_trials: Count | None = None
    max_failures: NonNegativeInt = 1
    tracking_uri: Text | None = None
    trainer: Annotated[TrainerSection, EMPTY_IF_NONE] = TrainerSection()
    cpu: Annotated[ProfileSection, EMPTY_IF_NONE] = ProfileSection()  # see sections
    smoke: Annotated[ProfileSection, EMPTY_IF_NONE] = ProfileSection()
    expected_runtime: Text | None = None

    @property
    def sections(self) -> dict[str, ProfileSection]:
        """The profile sections the file has (``cpu``, ``smoke``; an empty section counts: it runs)."""
        return {name: getattr(self, name) for name in SECTION_PROFILES if name in self.model_fields_set}

    @field_validator("name")
    @classmethod
    def _names_folders(cls, name: str) -> str:
        if not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError(f"use letters, digits, '-', '_' or '.' (it names folders), got {name!r}")
        return name

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("repeats a seed")
        return seeds

    @model_validator(mode="after")
    def _consistent(self) -> SweepFile:
        """Rules across fields: what each method needs, and keys both swept and overridden."""
        method = self.method
        for key, param in self.parameters.items():
            if param.values is not None:
                continue
            if method == "grid":
                problem = "method grid needs 'values' (distributions are for random and optuna)"
                raise KeyedError(f"parameters.{key}", problem)
            if is_int_key(key) and param.distribution != "int_uniform":
                raise KeyedError(
                    f"parameters.{key}.distribution",
                    f"{key} is an integer: use int_uniform, not {param.distribution}",
                )
        if method != "grid" and not self.parameters:
            raise KeyedError("parameters", f"method {method} needs at least one parameter")
        if method == "grid" and self.num_samples not in (None, 1):
            raise KeyedError(
                "num_samples",
                "method grid runs every combination once per seed; repeat it with 'seeds', not num_samples",
            )
        if method != "grid" and self.num_samples is None:
            raise KeyedError("num_samples", f"method {method} needs the number of configurations to try")
        for where, section in self.sections.items():
            if method == "grid" and section.num_samples is not None:
                problem = f"a grid's {where} run keeps every combination and seed"
                raise KeyedError(f"{where}.num_samples", problem)
        if "cpu" in self.sections:
            if self.resources.gpu == 0:
                raise KeyedError(
                    "cpu",
                    "this sweep's trials already ask for no GPU (resources.gpu is 0), so the file as written "
                    "is its CPU run; remove the cpu section, or give the GPU run its resources.gpu",
                )
            if self.cpu.resources.gpu > 0:
                raise KeyedError("cpu.resources.gpu", "the cpu profile runs without a GPU: use 0")
        layers = {"trainer.overrides": self.trainer.overrides}
        layers.update({f"{where}.overrides": section.overrides for where, section in self.sections.items()})
        for where, layer in layers.items():
            for key in layer:
                if key in self.parameters or key == "train.seed":
                    raise KeyedError(f"{where}.{key}", "is swept by this file; remove it here")
        return self


# ---- the validated spec ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamSpec:
    """How one dotted trainer key varies: ``values``, or a ``distribution`` between ``min`` and ``max``."""

    key: str
    values: tuple[Any, ...] | None = None
    distribution: str | None = None
    min: float | None = None
    max: float | None = None

    def domain_text(self) -> str:
        """``mask.ratio in [0.3, 0.5]`` or ``mask.ratio ~ uniform[0.2, 0.6]``."""
        if self.values is not None:
            return f"{self.key} in {list(self.values)}"
        return f"{self.key} ~ {self.distribution}[{self.min}, {self.max}]"


@dataclass(frozen=True)
class Profile:
    """One way to size a sweep: trainer overrides on top of ``trainer``, resources, concurrency, samples."""

    name: str
    overrides: dict[str, Any]  # empty for the file as written
    resources: Resources
    max_concurrent_trials: int | None
    num_samples: int | None  # random/optuna: the configurations to try; None keeps the file's
    expected_runtime: str | None
    section: str | None  # the file's section ("cpu", "smoke"); None for the file as written


def _profiles(file: SweepFile) -> dict[str, Profile]:
    main = "gpu" if file.resources.gpu > 0 else "cpu"
    found = {
        main: Profile(main, {}, file.resources, file.max_concurrent_trials, None, file.expected_runtime, None)
    }
    for name, sec in file.sections.items():
        found[name] = Profile(
            name,
            sec.overrides,
            sec.resources,
            sec.max_concurrent_trials,
            sec.num_samples,
            sec.expected_runtime,
            name,
        )
    return found


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file, as the plan, the tuner and the report read it."""

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
    profiles: dict[str, Profile]  # by name (PROFILES): the ones this file can run
    description: str | None

    @property
    def swept_keys(self) -> list[str]:
        return [p.key for p in self.parameters]

    @property
    def main_profile(self) -> str:
        """The profile of the file as written: ``gpu`` when its trials ask for a GPU, else ``cpu``."""
        return "gpu" if self.resources.gpu > 0 else "cpu"

    @property
    def expected_runtime(self) -> str | None:
        """The runtime the file states for the file as written."""
        return self.profiles[self.main_profile].expected_runtime

    @property
    def smoke_overrides(self) -> dict[str, Any] | None:
        """The smoke section's trainer overrides; None when the file has no smoke section."""
        smoke = self.profiles.get("smoke")
        return None if smoke is None else smoke.overrides

    @classmethod
    def from_file(cls, path: Path, text: str, file: SweepFile) -> SweepSpec:
        params = tuple(
            ParamSpec(key, None if p.values is None else tuple(p.values), p.distribution, p.min, p.max)
            for key, p in file.parameters.items()
        )
        return cls(
            path=path,
            text=text,
            name=file.name,
            method=file.method,
            metric=file.metric.name,
            goal=file.metric.goal,
            parameters=params,
            seeds=tuple(file.seeds),
            num_samples=1 if file.method == "grid" else (file.num_samples or 1),
            sampler_seed=file.sampler_seed,
            scheduler=file.scheduler,
            resources=file.resources,
            max_concurrent_trials=file.max_concurrent_trials,
            max_failures=file.max_failures,
            tracking_uri=file.tracking_uri,
            preset=file.trainer.preset,
            overrides=file.trainer.overrides,
            profiles=_profiles(file),
            description=file.description,
        )


# ---- reading -----------------------------------------------------------------------------------------
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


def load_spec(path: str | Path) -> SweepSpec:
    """Reads and validates a sweep file's schema (trial configs are checked by ``plan_sweep``).

    Raises:
        SpecError: naming the file and the first offending key.
    """
    path = Path(path)
    try:
        data, text = read_yaml(path, "sweep file")
    except ConfigError as exc:
        raise SpecError(str(exc)) from None
    _duplicate_keys(path, text)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a sweep file is a mapping with at least 'name', 'method', 'metric'")
    try:
        file = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(error_line(path, exc.errors(include_url=False)[0], SweepFile)) from None
    return SweepSpec.from_file(path, text, file)
