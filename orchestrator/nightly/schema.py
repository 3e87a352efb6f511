"""The nightly suite file (``sweeps/nightly.yaml``) as pydantic models: every key, its type and its range.

    experiment: nightly
    baseline: {window: 7}          # rolling median of the last 7 successful comparable nights
    trend_nights: 30
    bench:                         # trainer step throughput (jepa_core.bench.run_bench), per device
      cpu:  {preset: fmnist_cpu, overrides: {...}, steps: 10, warmup: 3}
      cuda: {preset: reference_112, steps: 30, warmup: 10}   # runs only where CUDA is available
    quality: {preset: fmnist_gpu, overrides: {...}, seeds: [0, 1]}
    overhead: {enabled: true, overrides: {...}, seeds: [0, 1], cpus: 1, timeout_s: 600}
    tolerances:
      bench_cpu.img_per_s: {rel: 0.15, direction: higher}
      quality.probe_acc: {abs: 0.02, direction: higher}
    smoke:                         # merged over the sections above under --smoke (orchestrator.nightly.suite)
      quality: {overrides: {train.epochs: 1}, seeds: [0]}
      tolerances: {...}

Every model forbids unknown keys. Strict or lax, per field, on purpose:

- counts (``steps``, ``warmup``, ``peak_size``, ``seeds``, ``cpus``, ``baseline.window``,
  ``trend_nights``) are strict integers: ``"10"``, ``10.0`` and ``true`` are refused, as before, since a
  count written as a string or a float is more likely a mistake than a wish;
- ``enabled`` is a strict boolean (``"yes"`` and ``1`` are refused: YAML's own ``yes`` already reads as true);
- ``timeout_s`` and a tolerance's ``rel`` / ``abs`` are strict numbers: an integer is taken as a float
  (``timeout_s: 600``, ``abs: 0``), a string or a boolean is refused, and so are ``inf`` and ``nan``;
- names (``experiment``, ``description``, ``preset``, ``storage_path``, metric names) are strict strings;
- trainer ``overrides`` values are passed on as written: the trainer config (jepa_core.config) coerces and
  checks them by its own rules, and every trainer section is checked here by building the config it
  describes, so a bad trainer value fails in a second too.

A section is checked whole whether or not it is ``enabled``. The validators raise :func:`_problem` errors,
whose context may carry a dotted ``where`` below the failing model (``overrides.mask.ratio``): the suite
loader appends it to pydantic's location to name the key (orchestrator.nightly.suite).

Imports neither torch, MLflow nor Ray: a bad file must fail in a second.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from jepa_core.config import PRESETS, Config, ConfigError, build_config, flatten
from orchestrator.nightly.metrics import DEVICES, KNOWN_METRICS
from orchestrator.nightly.tolerance import Tolerance
from orchestrator.sweep.spec import suggest

ERROR_TYPE = "nightly_suite"  # the pydantic error type of every check written here
_CONFIG_KEYS = frozenset(Config().to_flat())


def _problem(message: str, where: str = "") -> PydanticCustomError:
    """A validation error saying ``message``; ``where`` names the dotted key below the failing model."""
    return PydanticCustomError(ERROR_TYPE, "{message}", {"message": message, "where": where})


@dataclass(frozen=True)
class TrainerSpec:
    """A trainer config as a preset plus dotted overrides (the sweep files' ``trainer`` shape)."""

    preset: str | None
    overrides: dict[str, Any]

    def config(self, extra: dict[str, Any] | None = None) -> Config:
        """The resolved, validated config (``extra`` applied last). Raises ConfigError."""
        return build_config(self.preset, overrides=[self.overrides, dict(extra or {})])


# ---- field types -----------------------------------------------------------------------------------
def _known_preset(name: str) -> str:
    if name not in PRESETS:
        raise _problem(f"unknown preset {name!r}{suggest(name, PRESETS)}")
    return name


def _known_trainer_key(key: str) -> str:
    if key not in _CONFIG_KEYS:
        raise _problem(f"unknown trainer config key{suggest(key, _CONFIG_KEYS)}")
    return key


def _known_metric(name: str) -> str:
    if name not in KNOWN_METRICS:
        raise _problem(f"unknown metric{suggest(name, KNOWN_METRICS)}")
    return name


def _experiment_name(name: str) -> str:
    # It also names the overhead sweep (<experiment>-overhead), which names folders.
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise _problem(f"use letters, digits, '-', '_' or '.', got {name!r}")
    return name


def _folder(value: str) -> str:
    if not value.strip():
        raise _problem(f"expected a folder or URI every Ray node reaches, got {value!r}")
    return value


def _distinct(seeds: list[int]) -> list[int]:
    if len(set(seeds)) != len(seeds):
        raise _problem("repeats a seed")
    return seeds


def _dotted_overrides(value: Any) -> Any:
    """Nested (``{mask: {ratio: 0.5}}``) or dotted trainer overrides as dotted keys; null as none.

    Anything else is passed on as written, for the mapping and key checks to report.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        return value
    try:
        return flatten(value)
    except ConfigError:  # a key that is not a string: reported by the key check
        return value


def _null_is_empty(value: Any) -> Any:
    return {} if value is None else value


def _empty_is_none(value: Any) -> Any:
    # ``quality: {}`` and ``quality:`` (null) both mean no quality section, as a missing one does.
    return None if isinstance(value, dict) and not value else value


Preset = Annotated[StrictStr, AfterValidator(_known_preset)]
Overrides = Annotated[
    dict[Annotated[StrictStr, AfterValidator(_known_trainer_key)], Any], BeforeValidator(_dotted_overrides)
]
Seeds = Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=1), AfterValidator(_distinct)]
Amount = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
MetricName = Annotated[StrictStr, AfterValidator(_known_metric)]


# ---- sections --------------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainerSection(_Model):
    """A section that runs the trainer: a preset plus dotted (or nested) config overrides."""

    enabled: StrictBool = True
    preset: Preset | None = None
    overrides: Overrides = {}

    def trainer(self, extra: Mapping[str, Any]) -> TrainerSpec:
        """The trainer config this section runs, with the keys the section itself sets (``extra``) last."""
        return TrainerSpec(self.preset, {**self.overrides, **extra})

    def check_builds(self, spec: TrainerSpec, where: str = "") -> None:
        """Builds ``spec``'s config (this section's trainer); a ConfigError becomes a problem naming a key.

        The key is the override the message names, else the preset (the error came from the preset or from
        a key the section sets itself). ``where`` prefixes it (``cpu.`` for a bench device).
        """
        try:
            spec.config()
        except ConfigError as exc:
            named = _blamed_override(str(exc), self.overrides)
            raise _problem(str(exc), f"{where}overrides.{named}" if named else f"{where}preset") from None

    def check_seeds_list(self) -> None:
        """Refuses ``train.seed`` in the overrides of a section that runs a ``seeds`` list."""
        if "train.seed" in self.overrides:
            raise _problem("seeds are set with the section's 'seeds' list", "overrides.train.seed")


def _blamed_override(message: str, overrides: Mapping[str, Any]) -> str | None:
    """The override key a trainer ConfigError names: a quoted one first, else the longest one it mentions."""
    for quoted in re.findall(r"'([^']+)'", message):
        if quoted in overrides:
            return quoted
    named = [key for key in overrides if key in message]
    return max(named, key=len) if named else None


class BenchDevice(TrainerSection):
    """``bench.cpu`` / ``bench.cuda``: run_bench's median step over ``steps`` after ``warmup`` steps."""

    steps: Annotated[StrictInt, Field(ge=1)] = 10
    warmup: Annotated[StrictInt, Field(ge=0)] = 3
    peak_size: Annotated[StrictInt, Field(ge=64)] | None = None  # the peak matmul's side; None: the bench's

    def trainer_spec(self, device: str) -> TrainerSpec:
        return self.trainer({"train.device": device})


class BenchSection(_Model):
    """``bench``: one throughput section per device present (``bench_cpu``, ``bench_cuda``)."""

    enabled: StrictBool = True
    # ``cpu:`` with no body (null) runs that device with the defaults, as ``cpu: {}`` does.
    cpu: Annotated[BenchDevice | None, BeforeValidator(_null_is_empty)] = None
    cuda: Annotated[BenchDevice | None, BeforeValidator(_null_is_empty)] = None

    def devices(self) -> dict[str, BenchDevice]:
        """The device sections present, by device name, in :data:`DEVICES` order."""
        return {d: getattr(self, d) for d in DEVICES if getattr(self, d) is not None}

    @model_validator(mode="after")
    def _trainers_build(self) -> BenchSection:
        for device, body in self.devices().items():
            body.check_builds(body.trainer_spec(device), f"{device}.")
        return self


class QualitySection(TrainerSection):
    """``quality``: one training run per seed with the fixed budget; each metric is the mean over seeds."""

    seeds: Seeds = [0]

    def trainer_spec(self) -> TrainerSpec:
        return self.trainer({"train.progress": False})

    @model_validator(mode="after")
    def _trainer_builds(self) -> QualitySection:
        self.check_seeds_list()
        self.check_builds(self.trainer_spec())
        return self


class OverheadSection(TrainerSection):
    """``overhead``: the tiny trials through the sweep CLI and in-process (orchestrator.nightly.overhead)."""

    seeds: Seeds = [0, 1]
    cpus: Annotated[StrictInt, Field(ge=1)] = 1  # per trial, in the sweep and in the direct runs alike
    timeout_s: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] = 600.0
    # Tune's storage; None: a fresh temporary folder (one machine only).
    storage_path: Annotated[StrictStr, AfterValidator(_folder)] | None = None

    def trainer_spec(self) -> TrainerSpec:
        # The trials run on the CPU with the sweep's own thread rule (threads = the trial's CPUs): the figure
        # is the orchestrator's cost, which a GPU would only blur with device start-up.
        return self.trainer({"train.device": "cpu", "train.num_threads": self.cpus})

    @model_validator(mode="after")
    def _trainer_builds(self) -> OverheadSection:
        self.check_seeds_list()
        self.check_builds(self.trainer_spec())
        return self


class ToleranceSpec(_Model):
    """``{rel: 0.15, direction: higher}`` or ``{abs: 0.02, direction: lower}``: a :class:`Tolerance`."""

    rel: Amount | None = None  # a fraction of the baseline's magnitude
    abs: Amount | None = None  # in the metric's own unit
    direction: Literal["higher", "lower"]  # which is better

    @model_validator(mode="after")
    def _one_kind(self) -> ToleranceSpec:
        if (self.rel is None) == (self.abs is None):
            raise _problem("give exactly one of 'rel' (fraction of the baseline) or 'abs' (units)")
        return self

    def tolerance(self) -> Tolerance:
        """The runtime :class:`Tolerance` (kind ``rel`` or ``abs``, the amount as a float)."""
        if self.rel is not None:
            return Tolerance("rel", self.rel, self.direction)
        assert self.abs is not None  # _one_kind
        return Tolerance("abs", self.abs, self.direction)


class MeasuredSections(_Model):
    """What a night measures and how it is judged: the part that ``smoke`` is merged over."""

    bench: Annotated[BenchSection, BeforeValidator(_null_is_empty)] = BenchSection()
    quality: Annotated[QualitySection | None, BeforeValidator(_empty_is_none)] = None
    overhead: Annotated[OverheadSection | None, BeforeValidator(_empty_is_none)] = None
    # Metrics without an entry are recorded, never judged.
    tolerances: Annotated[dict[MetricName, ToleranceSpec], BeforeValidator(_null_is_empty)] = {}


class BaselineSection(_Model):
    window: Annotated[StrictInt, Field(ge=1)] = 7  # nights in the rolling median


class SmokeOverlay(_Model):
    """``smoke``: partial sections merged over the full ones under ``--smoke``; checked once merged."""

    bench: dict[StrictStr, Any] | None = None
    quality: dict[StrictStr, Any] | None = None
    overhead: dict[StrictStr, Any] | None = None
    tolerances: dict[StrictStr, Any] | None = None


class SuiteFile(MeasuredSections):
    """The whole file."""

    experiment: Annotated[StrictStr, AfterValidator(_experiment_name)] = "nightly"
    description: StrictStr | None = None
    baseline: Annotated[BaselineSection, BeforeValidator(_null_is_empty)] = BaselineSection()
    trend_nights: Annotated[StrictInt, Field(ge=2)] = 30  # nights shown in the report's trend plots
    smoke: Annotated[SmokeOverlay, BeforeValidator(_null_is_empty)] = SmokeOverlay()


# ---- what an error's location allows ---------------------------------------------------------------
def _bare(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` metadata and without ``| None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, ...]:
    """The keys allowed in the mapping at ``loc`` (a pydantic error location) below ``model``; () if none.

    ``keys_at(SuiteFile, ("bench", "cpu"))`` -> ``("enabled", "preset", "overrides", "steps", ...)``.
    """
    annotation: Any = model
    for part in loc:
        annotation = _bare(annotation)
        if _is_model(annotation):
            if part not in annotation.model_fields:
                return ()
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]  # past a mapping's key or a list's index
        else:
            return ()
    annotation = _bare(annotation)
    return tuple(annotation.model_fields) if _is_model(annotation) else ()
