"""jepa_core: an I-JEPA trainer that measures itself (Assran et al., 2023).

Public entry points: :func:`jepa_core.train.train`, :func:`load_encoder`, :func:`load_eval_dataset`.
Importing this package is cheap and has no side effects; it never imports Ray or MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["load_encoder", "load_eval_dataset"]

# What load_eval_dataset serves: the official splits of the public contract, then the two carved from "train".
_EVAL_DATASET_SPLITS = ("train", "test", "validation", "probe_train")


def load_encoder(checkpoint_path: str | Path) -> torch.nn.Module:
    """The target encoder of a checkpoint, in eval mode on the CPU.

    ``forward(images [B, C, H, W] float) -> [B, D]`` average-pooled features (the I-JEPA evaluation protocol),
    for images preprocessed as :func:`load_eval_dataset` does. Checkpoints written before a config key existed
    load too (the encoder does not depend on the predictor's keys).
    """
    from jepa_core.checkpoint import checkpoint_config, load_checkpoint
    from jepa_core.models import PooledEncoder, build_encoder

    state = load_checkpoint(checkpoint_path)
    cfg = checkpoint_config(state, checkpoint_path)
    encoder = build_encoder(cfg, int(state["in_chans"]))
    encoder.load_state_dict(state["target"])
    return PooledEncoder(encoder).eval().requires_grad_(False)


def load_eval_dataset(checkpoint_path: str | Path, split: str) -> torch.utils.data.Dataset:
    """``(image, label)`` pairs of ``split``, preprocessed as in training.

    Args:
        checkpoint_path: A checkpoint written by :func:`jepa_core.train.train`.
        split: ``"train"``: the dataset's whole official training split (validation images included);
            ``"test"``: its whole official test split (for image folders, ``root/val``); ``"validation"``:
            the fixed validation split carved from the training split, which ``probe_acc`` and ``knn_acc``
            are scored on (sized by the checkpoint's ``eval.val_size``); ``"probe_train"``: the training
            images outside validation that the trainer's probe and kNN bank fit on (``eval.train_subset`` of
            them). ``"val"`` is refused as ambiguous (ImageNet's name for its test split).

    Raises:
        ValueError: An unknown or ambiguous split.
        jepa_core.checkpoint.CheckpointError: The checkpoint cannot be read.
        jepa_core.data.DataError: The dataset cannot be found.
    """
    from jepa_core.checkpoint import checkpoint_config, load_checkpoint
    from jepa_core.data import eval_dataset, eval_split_dataset, eval_splits

    split = split.strip().lower()
    if split not in _EVAL_DATASET_SPLITS:
        hint = " ('val' is ambiguous: say 'validation' or 'test')" if split == "val" else ""
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(_EVAL_DATASET_SPLITS)}{hint}")
    cfg = checkpoint_config(load_checkpoint(checkpoint_path), checkpoint_path)
    d, ev = cfg.data, cfg.eval
    if split in ("validation", "probe_train"):
        splits = eval_splits(d.name, d.root, val_size=ev.val_size, train_subset=ev.train_subset)
        return eval_split_dataset(d.name, split, d.root, d.image_size, splits)
    return eval_dataset(d.name, split, d.root, d.image_size)
