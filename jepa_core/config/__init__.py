"""Typed, validated trainer configuration.

Defaults live in code (:mod:`.schema`, pydantic models); a named preset (:mod:`.presets`), then YAML files,
then ``--set key=value`` overrides are merged on top, in that order, and the result is validated once
(:mod:`.loading`). Every key is a dotted path (``mask.ratio``, ``ema.momentum_start``, ...): the same path is
used on the command line, in sweep files and as an MLflow param name. An invalid key or value raises
:class:`ConfigError`, one line naming its source and the key (:mod:`.errors`); how strictly each value type
coerces its input is documented in :mod:`.fields`.
"""

from __future__ import annotations

from jepa_core.config.errors import ConfigError, suggest
from jepa_core.config.loading import (
    Overrides,
    build_config,
    dump_yaml,
    flatten,
    load_yaml_file,
    parse_set,
    read_yaml,
    validate,
)
from jepa_core.config.presets import PRESETS
from jepa_core.config.schema import (
    DATASETS,
    DEVICES_HINT,
    Config,
    DataConfig,
    EmaConfig,
    EvalConfig,
    LossConfig,
    MaskConfig,
    ModelConfig,
    OptimConfig,
    PredictorConfig,
    TrainConfig,
    config_keys,
    default_val_size,
)

__all__ = [
    "DATASETS",
    "DEVICES_HINT",
    "PRESETS",
    "Config",
    "ConfigError",
    "DataConfig",
    "EmaConfig",
    "EvalConfig",
    "LossConfig",
    "MaskConfig",
    "ModelConfig",
    "OptimConfig",
    "Overrides",
    "PredictorConfig",
    "TrainConfig",
    "build_config",
    "config_keys",
    "default_val_size",
    "dump_yaml",
    "flatten",
    "load_yaml_file",
    "parse_set",
    "read_yaml",
    "suggest",
    "validate",
]
