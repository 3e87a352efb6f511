"""Typed, validated trainer configuration.

Defaults live in code (the dataclasses below); a named preset, then YAML files, then ``--set key=value``
overrides are merged on top, in that order, and the result is validated once. Every key is a dotted path
(``mask.ratio``, ``ema.momentum_start``, ...): the same path is used on the command line, in sweep files
and as an MLflow param name.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """An invalid config key or value; the message is one line naming it."""


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # fashion_mnist | digits | cifar10 | cifar100 | imagefolder
    root: str | None = None
    image_size: int = 28
    subset: int | None = None  # train on a seeded subset of this many images
    crop_scale_min: float = 0.3  # I-JEPA random resized crop scale range
    crop_scale_max: float = 1.0
    hflip: bool = False
    on_device: bool = True  # hold small datasets whole on the training device as one tensor
    workers: int = 4  # loader workers, imagefolder only


@dataclass
class ModelConfig:
    patch_size: int = 4
    embed_dim: int = 192
    depth: int = 6
    num_heads: int = 3
    mlp_ratio: float = 4.0
    drop_path: float = 0.0


@dataclass
class PredictorConfig:
    depth: int = 4
    embed_dim: int = 96
    num_heads: int = 3
    # False: the paper's predictor (each target block predicted by full attention over the context and that
    # block's mask tokens). True: a faster variant, one pass over all blocks in which context tokens do not
    # attend to mask tokens; a different model, not the paper's.
    one_pass: bool = False


@dataclass
class MaskConfig:
    ratio: float = 0.4  # fraction of the patch grid covered by the union of the target blocks
    num_targets: int = 4
    target_aspect_min: float = 0.75
    target_aspect_max: float = 1.5
    context_scale_min: float = 0.85
    context_scale_max: float = 1.0
    min_context: int = 4


@dataclass
class EmaConfig:
    momentum_start: float = 0.996
    momentum_end: float = 1.0


@dataclass
class OptimConfig:
    lr: float = 1e-3
    start_lr: float = 1e-4  # learning rate at step 0, ramped linearly to lr over warmup
    final_lr: float = 1e-6
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4  # cosine ramp from weight_decay to weight_decay_end
    warmup_epochs: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 0.0  # 0 disables clipping


@dataclass
class LossConfig:
    kind: str = "l2"  # l2 | smooth_l1


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int = 0  # torch CPU threads; 0 keeps torch's default
    steps_per_epoch: int = 0  # 0 = one pass over the data
    compile: bool = False  # torch.compile the step (CUDA)
    # Live per-step bar, drawn only when stderr is a terminal: in a file its carriage-return updates are
    # noise. The one-line summary of each epoch (metrics, ETA) is printed either way (Ray trials too).
    progress: bool = True
    checkpoint_every: int = 1


@dataclass
class EvalConfig:
    every: int = 1  # evaluate every N epochs (and always after the last); 0 only at the end
    # Validation images carved from the training split (fixed, the same for every seed): probe_acc and
    # knn_acc are scored on them. 0 = 10% of the training split, at least 500 images.
    val_size: int = 0
    train_subset: int = 10000  # training-split images outside validation that fit the probe and kNN bank
    test_subset: int = 0  # 0 = the whole test split (scored once, after the last epoch)
    knn_k: int = 20
    batch_size: int = 512
    # Warn when RankMe < threshold * embed_dim: a healthy but mean-dominated representation of these sizes
    # sits around 0.04-0.1 x dim, a collapsing one falls towards 1.
    collapse_threshold: float = 0.025


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_flat(self) -> dict[str, Any]:
        """All keys as ``{"section.key": value}``."""
        return {
            f"{section.name}.{f.name}": getattr(getattr(self, section.name), f.name)
            for section in dataclasses.fields(self)
            for f in dataclasses.fields(getattr(self, section.name))
        }

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, nested: dict[str, Any]) -> Config:
        """Builds and validates a config from a nested or flat mapping of overrides on the defaults."""
        return build_config(overrides=[nested])


# Presets: dotted overrides on the defaults. Each is a real, runnable configuration.
PRESETS: dict[str, dict[str, Any]] = {
    # Sized with the one-pass predictor variant: 8.6 min on an idle 2-vCPU Intel Xeon, 22 min on a 2-vCPU AMD
    # EPYC, probe 0.814 on 5k test images against 0.797 for raw pixels and 0.709 at random init. With the
    # paper's predictor (the default) it trains in 26.4 min on the AMD machine to 0.808 test (0.813
    # validation), against 0.802 for raw pixels and 0.715 at random init on the same images. 7 px patches
    # (a 4x4 grid) cost a third of 4 px patches per image and learned more per epoch in a grid of 6-epoch
    # runs; the whole training set beat a 30k subset seen twice as often. The probe is fit on 10k training
    # images outside validation, scored on the 6k validation images each evaluation and on 5k test images
    # once, after the last epoch.
    "fmnist_cpu": {
        "data.name": "fashion_mnist",
        "data.image_size": 28,
        "model.patch_size": 7,
        "model.embed_dim": 128,
        "model.depth": 4,
        "model.num_heads": 4,
        "predictor.depth": 3,
        "predictor.embed_dim": 64,
        "predictor.num_heads": 4,
        "mask.ratio": 0.4,
        "optim.lr": 1.5e-3,
        "optim.warmup_epochs": 1,
        "train.epochs": 10,
        "train.batch_size": 256,
        "eval.train_subset": 10000,
        "eval.test_subset": 5000,
        "eval.every": 5,
    },
    # One GPU, about 2 minutes on an H100: the whole dataset on the device, larger model, bf16.
    "fmnist_gpu": {
        "data.name": "fashion_mnist",
        "data.image_size": 28,
        "model.patch_size": 4,
        "model.embed_dim": 256,
        "model.depth": 6,
        "model.num_heads": 4,
        "predictor.depth": 4,
        "predictor.embed_dim": 128,
        "predictor.num_heads": 4,
        "mask.ratio": 0.4,
        "optim.lr": 2e-3,
        "optim.warmup_epochs": 2,
        "train.epochs": 20,
        "train.batch_size": 512,
        "eval.train_subset": 60000,
        "eval.every": 5,
    },
    "cifar10_gpu": {
        "data.name": "cifar10",
        "data.image_size": 32,
        "data.hflip": True,
        "model.patch_size": 4,
        "model.embed_dim": 384,
        "model.depth": 12,
        "model.num_heads": 6,
        "predictor.depth": 6,
        "predictor.embed_dim": 192,
        "predictor.num_heads": 6,
        "mask.ratio": 0.4,
        "optim.lr": 1e-3,
        "optim.warmup_epochs": 10,
        "train.epochs": 200,
        "train.batch_size": 512,
        "eval.train_subset": 50000,
        "eval.every": 10,
    },
    # The shape of the reference I-JEPA step at small scale, for benchmarks (synthetic images suffice).
    "reference_112": {
        "data.name": "imagefolder",
        "data.image_size": 112,
        "data.on_device": False,
        "model.patch_size": 8,
        "model.embed_dim": 192,
        "model.depth": 6,
        "model.num_heads": 3,
        "predictor.depth": 6,
        "predictor.embed_dim": 96,
        "predictor.num_heads": 3,
        "mask.num_targets": 4,
        "mask.ratio": 0.45,
        "train.batch_size": 64,
    },
    # The paper's ImageNet-1k settings (Assran et al., 2023, appendix): 4 targets of scale 0.15-0.2 whose
    # union covers about 45% of the 14x14 (or 16x16) grid, context block 0.85-1.0, AdamW with lr 1e-3 after a
    # 40-epoch warmup from 1e-4, cosine to 1e-6, weight decay 0.04 -> 0.4, EMA 0.996 -> 1.0, batch 2048.
    "imagenet_vith14": {
        "data.name": "imagenet",
        "data.image_size": 224,
        "data.on_device": False,
        "model.patch_size": 14,
        "model.embed_dim": 1280,
        "model.depth": 32,
        "model.num_heads": 16,
        "predictor.depth": 12,
        "predictor.embed_dim": 384,
        "predictor.num_heads": 12,
        "mask.ratio": 0.45,
        "optim.lr": 1e-3,
        "optim.start_lr": 1e-4,
        "optim.final_lr": 1e-6,
        "optim.warmup_epochs": 40,
        "train.epochs": 300,
        "train.batch_size": 2048,
        "train.compile": True,
        "eval.val_size": 10000,  # 0.8% of ImageNet-1k train: preprocessed images are held in memory
        "eval.every": 10,
    },
    "imagenet_vitb16": {
        "data.name": "imagenet",
        "data.image_size": 224,
        "data.on_device": False,
        "model.patch_size": 16,
        "model.embed_dim": 768,
        "model.depth": 12,
        "model.num_heads": 12,
        "predictor.depth": 6,
        "predictor.embed_dim": 384,
        "predictor.num_heads": 12,
        "mask.ratio": 0.45,
        "optim.lr": 1e-3,
        "optim.start_lr": 1e-4,
        "optim.final_lr": 1e-6,
        "optim.warmup_epochs": 40,
        "train.epochs": 600,
        "train.batch_size": 2048,
        "train.compile": True,
        "eval.val_size": 10000,  # 0.8% of ImageNet-1k train: preprocessed images are held in memory
        "eval.every": 10,
    },
}

_VAL_FRACTION = 0.1
_MIN_VAL_SIZE = 500


def default_val_size(num_train: int) -> int:
    """Validation size for ``eval.val_size=0``: 10% of the training split, at least 500 images.

    The 500-image floor keeps the validation accuracy's standard error near 2 points; on a training split
    under 2,000 images (sklearn digits has 1,438) it would take most of the split, so the size is capped at a
    quarter of it (359 for digits), and never below one image.

    Args:
        num_train: Images in the official training split.
    """
    size = max(round(_VAL_FRACTION * num_train), _MIN_VAL_SIZE)
    return max(1, min(size, num_train // 4))


DATASETS = ("fashion_mnist", "digits", "cifar10", "cifar100", "imagenet", "imagefolder")
DEVICES_HINT = "auto, cpu, cuda or cuda:N"


def _field_types(section_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(section_cls)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Casts ``value`` to the field's declared type, or raises ConfigError naming the key."""
    args = typing.get_args(annotation)
    optional = isinstance(annotation, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), annotation) if optional else annotation
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null") and optional):
        if optional:
            return None
        raise ConfigError(f"config key '{key}' must not be empty")
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"config key '{key}' expects true or false, got {value!r}")
    if base is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' expects an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}' expects an integer, got {value!r}")
    if base is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' expects a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key '{key}' expects a number, got {value!r}") from None
        if out != out or out in (float("inf"), float("-inf")):
            raise ConfigError(f"config key '{key}' must be finite, got {value!r}")
        return out
    if base is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"config key '{key}' expects a string, got {value!r}")
        return str(value)
    raise ConfigError(f"config key '{key}' has an unsupported type")  # pragma: no cover


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"mask": {"ratio": 0.5}}`` -> ``{"mask.ratio": 0.5}``; already-dotted keys pass through."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ConfigError(f"config key {key!r} is not a string")
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and "." not in key and not prefix:
            flat.update(flatten(value, prefix=f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parses ``["mask.ratio=0.5", ...]`` (values read as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {key.strip()}: unreadable value {raw!r}") from None
        out[key.strip()] = value
    return out


def read_yaml(path: str | Path, what: str = "config file") -> tuple[Any, str]:
    """Reads and safely parses one YAML file; returns (data, text).

    Raises:
        ConfigError: One line naming the file (and the line, for a syntax error): unreadable, not UTF-8,
            invalid YAML, or a tag that would build a Python object (``yaml.safe_load`` refuses those).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read {what} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: cannot read {what} (not UTF-8 text: byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise ConfigError(f"{p}{where}: invalid YAML ({problem})") from None
    return data, text


def load_yaml_file(path: str | Path) -> dict[str, Any]:
    """Reads a YAML config file of (nested or dotted) overrides."""
    data, _ = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of config keys")
    return data


def build_config(
    preset: str | None = None,
    files: list[str | Path] | None = None,
    overrides: list[dict[str, Any]] | None = None,
) -> Config:
    """Defaults <- preset <- files (in order) <- overrides (in order), then validated.

    Raises:
        ConfigError: unknown preset, unknown key, or a value of the wrong type or out of range.
    """
    layers: list[dict[str, Any]] = []
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset '{preset}' (choose from {', '.join(sorted(PRESETS))})")
        layers.append(PRESETS[preset])
    layers += [load_yaml_file(f) for f in files or []]
    layers += list(overrides or [])

    cfg = Config()
    for layer in layers:
        for key, value in flatten(layer).items():
            section_name, _, name = key.partition(".")
            section = getattr(cfg, section_name, None) if section_name in _SECTIONS else None
            if section is None or not name or name not in _field_types(type(section)):
                raise ConfigError(f"unknown config key '{key}'")
            setattr(section, name, _coerce(key, value, _field_types(type(section))[name]))
    validate(cfg)
    return cfg


_SECTIONS = {f.name for f in dataclasses.fields(Config)}


def _check(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}' {rule}, got {value!r}")


def validate(cfg: Config) -> None:
    """Range and consistency checks; raises ConfigError naming the first offending key."""
    d, m, p, k, e, o, t, ev = (
        cfg.data,
        cfg.model,
        cfg.predictor,
        cfg.mask,
        cfg.ema,
        cfg.optim,
        cfg.train,
        cfg.eval,
    )
    _check(d.name in DATASETS, "data.name", f"must be one of {', '.join(DATASETS)}", d.name)
    _check(d.image_size > 0, "data.image_size", "must be a positive integer", d.image_size)
    _check(d.subset is None or d.subset > 0, "data.subset", "must be a positive integer or null", d.subset)
    _check(
        0 < d.crop_scale_min <= d.crop_scale_max <= 1,
        "data.crop_scale_min",
        "must satisfy 0 < crop_scale_min <= crop_scale_max <= 1",
        d.crop_scale_min,
    )
    _check(d.workers >= 0, "data.workers", "must be >= 0", d.workers)
    for key, value in (
        ("model.patch_size", m.patch_size),
        ("model.embed_dim", m.embed_dim),
        ("model.depth", m.depth),
        ("model.num_heads", m.num_heads),
        ("predictor.depth", p.depth),
        ("predictor.embed_dim", p.embed_dim),
        ("predictor.num_heads", p.num_heads),
    ):
        _check(value > 0, key, "must be a positive integer", value)
    _check(
        d.image_size % m.patch_size == 0,
        "data.image_size",
        f"must be divisible by model.patch_size={m.patch_size}",
        d.image_size,
    )
    _check(
        m.embed_dim % m.num_heads == 0,
        "model.num_heads",
        f"must divide model.embed_dim={m.embed_dim}",
        m.num_heads,
    )
    _check(
        p.embed_dim % p.num_heads == 0,
        "predictor.num_heads",
        f"must divide predictor.embed_dim={p.embed_dim}",
        p.num_heads,
    )
    _check(m.mlp_ratio > 0, "model.mlp_ratio", "must be positive", m.mlp_ratio)
    _check(0 <= m.drop_path < 1, "model.drop_path", "must be in [0, 1)", m.drop_path)
    _check(0 < k.ratio < 1, "mask.ratio", "must be in (0, 1)", k.ratio)
    _check(1 <= k.num_targets <= 16, "mask.num_targets", "must be an integer in [1, 16]", k.num_targets)
    _check(
        0 < k.target_aspect_min <= k.target_aspect_max,
        "mask.target_aspect_min",
        "must satisfy 0 < target_aspect_min <= target_aspect_max",
        k.target_aspect_min,
    )
    _check(
        0 < k.context_scale_min <= k.context_scale_max <= 1,
        "mask.context_scale_min",
        "must satisfy 0 < context_scale_min <= context_scale_max <= 1",
        k.context_scale_min,
    )
    grid = (d.image_size // m.patch_size) ** 2
    _check(
        1 <= k.min_context < grid,
        "mask.min_context",
        f"must be in [1, {grid - 1}] for a {grid}-patch grid",
        k.min_context,
    )
    _check(grid >= 4, "data.image_size", "must give a patch grid of at least 2x2", d.image_size)
    _check(0 <= e.momentum_start <= 1, "ema.momentum_start", "must be in [0, 1]", e.momentum_start)
    _check(0 <= e.momentum_end <= 1, "ema.momentum_end", "must be in [0, 1]", e.momentum_end)
    _check(o.lr > 0, "optim.lr", "must be positive", o.lr)
    _check(o.start_lr >= 0, "optim.start_lr", "must be >= 0", o.start_lr)
    _check(o.final_lr >= 0, "optim.final_lr", "must be >= 0", o.final_lr)
    _check(o.weight_decay >= 0, "optim.weight_decay", "must be >= 0", o.weight_decay)
    _check(o.weight_decay_end >= 0, "optim.weight_decay_end", "must be >= 0", o.weight_decay_end)
    _check(o.warmup_epochs >= 0, "optim.warmup_epochs", "must be >= 0", o.warmup_epochs)
    _check(0 <= o.beta1 < 1, "optim.beta1", "must be in [0, 1)", o.beta1)
    _check(0 <= o.beta2 < 1, "optim.beta2", "must be in [0, 1)", o.beta2)
    _check(o.grad_clip >= 0, "optim.grad_clip", "must be >= 0", o.grad_clip)
    _check(cfg.loss.kind in ("l2", "smooth_l1"), "loss.kind", "must be l2 or smooth_l1", cfg.loss.kind)
    _check(t.epochs >= 0, "train.epochs", "must be >= 0", t.epochs)
    _check(t.batch_size > 0, "train.batch_size", "must be a positive integer", t.batch_size)
    _check(t.seed >= 0, "train.seed", "must be >= 0", t.seed)
    dev = t.device
    _check(
        dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit()),
        "train.device",
        f"must be {DEVICES_HINT}",
        dev,
    )
    _check(t.num_threads >= 0, "train.num_threads", "must be >= 0", t.num_threads)
    _check(t.steps_per_epoch >= 0, "train.steps_per_epoch", "must be >= 0", t.steps_per_epoch)
    _check(t.checkpoint_every >= 1, "train.checkpoint_every", "must be >= 1", t.checkpoint_every)
    _check(ev.every >= 0, "eval.every", "must be >= 0", ev.every)
    _check(ev.val_size >= 0, "eval.val_size", "must be >= 0", ev.val_size)
    _check(ev.train_subset > 0, "eval.train_subset", "must be a positive integer", ev.train_subset)
    _check(ev.test_subset >= 0, "eval.test_subset", "must be >= 0", ev.test_subset)
    _check(ev.knn_k > 0, "eval.knn_k", "must be a positive integer", ev.knn_k)
    _check(ev.batch_size > 0, "eval.batch_size", "must be a positive integer", ev.batch_size)
    _check(
        0 <= ev.collapse_threshold < 1, "eval.collapse_threshold", "must be in [0, 1)", ev.collapse_threshold
    )


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
