"""The trainer config's schema: one pydantic model per section, and :class:`Config` holding them all.

Defaults live here, in code. Every field is typed (see :mod:`jepa_core.config.fields` for how strictly each
type coerces) and constrained; rules that tie several fields together are model validators, a section's
own rules on the section and rules across sections on :class:`Config`. Unknown keys are refused
(``extra="forbid"``).

Configs are mutable, as callers rely on (``cfg.data.root = ...`` after loading, deep-copied variants in the
bench), and an assignment is not validated: build configs with
:func:`jepa_core.config.build_config`, and call :func:`jepa_core.config.validate` after changing one by hand.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jepa_core.config.errors import rule_error
from jepa_core.config.fields import Flag, Float, Int, OptionalInt, OptionalPathStr

DatasetName = Literal["fashion_mnist", "digits", "cifar10", "cifar100", "imagenet", "imagefolder"]
DATASETS: tuple[str, ...] = get_args(DatasetName)
DEVICES_HINT = "auto, cpu, cuda or cuda:N"

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


class _Section(BaseModel):
    """A config section: unknown keys refused, every float finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataConfig(_Section):
    name: DatasetName = "fashion_mnist"
    root: OptionalPathStr = None
    image_size: Int = Field(28, gt=0)
    subset: OptionalInt = Field(None, gt=0)  # train on a seeded subset of this many images
    crop_scale_min: Float = Field(0.3, gt=0, le=1)  # I-JEPA random resized crop scale range
    crop_scale_max: Float = Field(1.0, gt=0, le=1)
    hflip: Flag = False
    on_device: Flag = True  # hold small datasets whole on the training device as one tensor
    workers: Int = Field(4, ge=0)  # loader workers, imagefolder only

    @model_validator(mode="after")
    def _crop_range(self) -> DataConfig:
        if self.crop_scale_min > self.crop_scale_max:
            raise rule_error(
                "data.crop_scale_min",
                f"must be <= data.crop_scale_max={self.crop_scale_max}",
                self.crop_scale_min,
                ("data.crop_scale_min", "data.crop_scale_max"),
            )
        return self


def _heads_divide(section: str, embed_dim: int, num_heads: int) -> None:
    if embed_dim % num_heads:
        raise rule_error(
            f"{section}.num_heads",
            f"must divide {section}.embed_dim={embed_dim}",
            num_heads,
            (f"{section}.num_heads", f"{section}.embed_dim"),
        )


class ModelConfig(_Section):
    patch_size: Int = Field(4, gt=0)
    embed_dim: Int = Field(192, gt=0)
    depth: Int = Field(6, gt=0)
    num_heads: Int = Field(3, gt=0)
    mlp_ratio: Float = Field(4.0, gt=0)
    drop_path: Float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads(self) -> ModelConfig:
        _heads_divide("model", self.embed_dim, self.num_heads)
        return self


class PredictorConfig(_Section):
    depth: Int = Field(4, gt=0)
    embed_dim: Int = Field(96, gt=0)
    num_heads: Int = Field(3, gt=0)
    # False: the paper's predictor (each target block predicted by full attention over the context and that
    # block's mask tokens). True: a faster variant, one pass over all blocks in which context tokens do not
    # attend to mask tokens; a different model, not the paper's.
    one_pass: Flag = False

    @model_validator(mode="after")
    def _heads(self) -> PredictorConfig:
        _heads_divide("predictor", self.embed_dim, self.num_heads)
        return self


class MaskConfig(_Section):
    ratio: Float = Field(
        0.4, gt=0, lt=1
    )  # fraction of the patch grid covered by the union of the target blocks
    num_targets: Int = Field(4, ge=1, le=16)
    target_aspect_min: Float = Field(0.75, gt=0)
    target_aspect_max: Float = Field(1.5, gt=0)
    context_scale_min: Float = Field(0.85, gt=0, le=1)
    context_scale_max: Float = Field(1.0, gt=0, le=1)
    min_context: Int = Field(4, ge=1)  # and below the number of patches: checked by Config

    @model_validator(mode="after")
    def _ranges(self) -> MaskConfig:
        for low, high in (
            ("target_aspect_min", "target_aspect_max"),
            ("context_scale_min", "context_scale_max"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise rule_error(
                    f"mask.{low}",
                    f"must be <= mask.{high}={getattr(self, high)}",
                    getattr(self, low),
                    (f"mask.{low}", f"mask.{high}"),
                )
        return self


class EmaConfig(_Section):
    momentum_start: Float = Field(0.996, ge=0, le=1)
    momentum_end: Float = Field(1.0, ge=0, le=1)


class OptimConfig(_Section):
    lr: Float = Field(1e-3, gt=0)
    start_lr: Float = Field(1e-4, ge=0)  # learning rate at step 0, ramped linearly to lr over warmup
    final_lr: Float = Field(1e-6, ge=0)
    weight_decay: Float = Field(0.04, ge=0)
    weight_decay_end: Float = Field(0.4, ge=0)  # cosine ramp from weight_decay to weight_decay_end
    warmup_epochs: Float = Field(1.0, ge=0)
    beta1: Float = Field(0.9, ge=0, lt=1)
    beta2: Float = Field(0.999, ge=0, lt=1)
    grad_clip: Float = Field(0.0, ge=0)  # 0 disables clipping


class LossConfig(_Section):
    kind: Literal["l2", "smooth_l1"] = "l2"


class TrainConfig(_Section):
    epochs: Int = Field(10, ge=0)
    batch_size: Int = Field(256, gt=0)
    seed: Int = Field(0, ge=0)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: Int = Field(0, ge=0)  # torch CPU threads; 0 keeps torch's default
    steps_per_epoch: Int = Field(0, ge=0)  # 0 = one pass over the data
    compile: Flag = False  # torch.compile the step (CUDA)
    # What the step computes in: auto = bf16 autocast on CUDA, fp32 on a CPU; bf16 = bf16 autocast on either
    # (on a CPU worth it only with native bf16 instructions, AVX512-BF16 or AMX); fp32 = no autocast.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Live per-step bar, drawn only when stderr is a terminal: in a file its carriage-return updates are
    # noise. The one-line summary of each epoch (metrics, ETA) is printed either way (Ray trials too).
    progress: Flag = True
    checkpoint_every: Int = Field(1, ge=1)

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()):
            return device
        raise rule_error("train.device", f"must be {DEVICES_HINT}", device)


class EvalConfig(_Section):
    every: Int = Field(1, ge=0)  # evaluate every N epochs (and always after the last); 0 only at the end
    # Validation images carved from the training split (fixed, the same for every seed): probe_acc and
    # knn_acc are scored on them. 0 = default_val_size(): 10% of the training split, at least 500 images.
    val_size: Int = Field(0, ge=0)
    train_subset: Int = Field(10000, gt=0)  # training-split images outside validation that fit the probe, kNN
    test_subset: Int = Field(0, ge=0)  # 0 = the whole test split (scored once, after the last epoch)
    knn_k: Int = Field(20, gt=0)
    batch_size: Int = Field(512, gt=0)
    # Warn when RankMe < threshold * embed_dim: a healthy but mean-dominated representation of these sizes
    # sits around 0.04-0.1 x dim, a collapsing one falls towards 1.
    collapse_threshold: Float = Field(0.025, ge=0, lt=1)


class Config(BaseModel):
    """The whole trainer config; every key is addressed by its dotted path (``mask.ratio``)."""

    model_config = ConfigDict(extra="forbid")

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    predictor: PredictorConfig = Field(default_factory=PredictorConfig)
    mask: MaskConfig = Field(default_factory=MaskConfig)
    ema: EmaConfig = Field(default_factory=EmaConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _patch_grid(self) -> Config:
        """The image must tile into patches, at least 2x2 of them, and leave room for the context."""
        d, m, k = self.data, self.model, self.mask
        size_keys = ("data.image_size", "model.patch_size")
        if d.image_size % m.patch_size:
            raise rule_error(
                "data.image_size",
                f"must be divisible by model.patch_size={m.patch_size}",
                d.image_size,
                size_keys,
            )
        grid = (d.image_size // m.patch_size) ** 2
        if grid < 4:
            raise rule_error(
                "data.image_size", "must give a patch grid of at least 2x2", d.image_size, size_keys
            )
        if k.min_context >= grid:
            raise rule_error(
                "mask.min_context",
                f"must be in [1, {grid - 1}] for a {grid}-patch grid",
                k.min_context,
                ("mask.min_context", *size_keys),
            )
        return self

    def to_flat(self) -> dict[str, Any]:
        """All keys as ``{"section.key": value}``, in declaration order."""
        return {
            f"{section}.{name}": value
            for section, fields in self.to_dict().items()
            for name, value in fields.items()
        }

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """All keys as ``{"section": {"key": value}}`` (what checkpoints and ``config.yaml`` store)."""
        return self.model_dump()


def config_keys() -> tuple[str, ...]:
    """Every dotted key of the schema, in declaration order."""
    return tuple(
        f"{section}.{name}"
        for section, info in Config.model_fields.items()
        for name in info.annotation.model_fields  # type: ignore[union-attr]
    )
