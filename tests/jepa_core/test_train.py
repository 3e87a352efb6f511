from __future__ import annotations

import gc
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import jepa_core
from jepa_core.checkpoint import (
    CheckpointError,
    ResumeMismatchError,
    checkpoint_config,
    load_checkpoint,
    read_extra_state,
    save_checkpoint,
)
from jepa_core.config import build_config
from jepa_core.feeds import EvalData
from jepa_core.models import IJepa, build_ijepa
from jepa_core.resume import check_resumable
from jepa_core.train import main, train
from jepa_core.trainer import DivergenceError, Trainer

from .conftest import TINY

TEST_KEYS = ("test_probe_acc", "test_knn_acc")


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _losses(out):
    return [row["train_loss"] for row in _rows(out)]


def _set_args(overrides):
    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]


def test_train__resume_continues_exactly(tmp_path):
    cfg = build_config(overrides=[TINY, {"train.epochs": 4, "eval.every": 2}])
    straight = train(cfg, tmp_path / "a")
    stop_after_two = lambda report: report.epoch < 2  # noqa: E731 - an "interrupted" run
    train(cfg, tmp_path / "b", on_epoch=stop_after_two)
    assert len(_losses(tmp_path / "b")) == 2
    # Keys that do not touch the math may change on resume (train.device=auto resolves to the same type).
    allowed = {
        "train.progress": True,
        "train.checkpoint_every": 3,
        "data.workers": 0,
        "data.root": str(tmp_path),
    }
    allowed["train.device"] = "auto" if not torch.cuda.is_available() else "cpu"
    resumed_cfg = build_config(overrides=[TINY, {"train.epochs": 4, "eval.every": 2}, allowed])
    resumed = train(resumed_cfg, tmp_path / "b", resume_from=tmp_path / "b" / "checkpoint.pt")
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")
    assert resumed["probe_acc"] == straight["probe_acc"]
    assert resumed["test_probe_acc"] == straight["test_probe_acc"]
    assert resumed["epoch"] == 4


def test_train__scores_validation_every_epoch_and_test_on_the_last(tmp_path, tiny_config):
    cfg = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 2})})
    reports = []
    train(cfg, tmp_path, on_epoch=reports.append, extra_state={"run_id": "abc"})
    assert [r.epoch for r in reports] == [1, 2]
    for key in ("train_loss", "probe_acc", "knn_acc", "rankme", "img_per_s", "epoch_time_s"):
        assert key in reports[0].metrics and key in reports[-1].metrics
    assert not set(TEST_KEYS) & set(reports[0].metrics)
    assert all(0 <= reports[-1].metrics[key] <= 1 for key in TEST_KEYS)
    rows = _rows(tmp_path)
    assert [row["epoch"] for row in rows] == [1, 2] and all("probe_acc" in row for row in rows)
    assert not set(TEST_KEYS) & set(rows[0]) and set(TEST_KEYS) <= set(rows[1])
    assert rows[1] == pytest.approx(reports[-1].metrics)
    assert reports[-1].checkpoint_path.is_file()
    assert read_extra_state(reports[-1].checkpoint_path) == {"run_id": "abc"}
    assert (tmp_path / "config.yaml").read_text().startswith("data:")


def test_train__zero_epochs_writes_random_init_checkpoint(tmp_path, tiny_config):
    cfg = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 0})})
    final = train(cfg, tmp_path)
    assert final["epoch"] == 0 and 0 <= final["probe_acc"] <= 1
    assert all(0 <= final[key] <= 1 for key in TEST_KEYS)  # the random-init reference is scored on test too
    ckpt = tmp_path / "checkpoint.pt"
    encoder = jepa_core.load_encoder(ckpt)
    dataset = jepa_core.load_eval_dataset(ckpt, "test")
    image, label = dataset[0]
    assert image.shape == (1, 16, 16) and isinstance(label, int)
    feats = encoder(torch.stack([dataset[i][0] for i in range(4)]))
    assert feats.shape == (4, cfg.model.embed_dim)
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    sizes = {
        split: len(jepa_core.load_eval_dataset(ckpt, split))
        for split in ("train", "validation", "probe_train")
    }
    assert sizes == {"train": 1438, "validation": 359, "probe_train": cfg.eval.train_subset}
    with pytest.raises(ValueError, match="ambiguous"):
        jepa_core.load_eval_dataset(ckpt, "val")


def test_eval_data__validation_split_ignores_train_seed(tiny_config):
    a = EvalData(tiny_config, torch.device("cpu"))
    reseeded = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"seed": 7})})
    b = EvalData(reseeded, torch.device("cpu"))
    for split in ("validation", "probe_train", "test"):
        assert np.array_equal(a.splits.indices(split), b.splits.indices(split))
        assert torch.equal(a.sets[split][0], b.sets[split][0])
    assert not set(a.splits.validation.tolist()) & set(a.splits.probe_train.tolist())
    assert (
        len(a.sets["validation"][1]) == 359 and len(a.sets["probe_train"][1]) == tiny_config.eval.train_subset
    )


def test_train__unreadable_checkpoint_is_an_error(tmp_path, tiny_config):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        train(tiny_config, tmp_path / "run", resume_from=bad)


def test_train__checkpoint_of_another_config_is_refused(tmp_path, tiny_config):
    cfg = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 1})})
    train(cfg, tmp_path)
    other = cfg.model_copy(update={"mask": cfg.mask.model_copy(update={"ratio": 0.6})})
    with pytest.raises(ResumeMismatchError, match=r"mask\.ratio=0\.4, this config has mask\.ratio=0\.6"):
        train(other, tmp_path, resume_from=tmp_path / "checkpoint.pt")


def test_main__resume_that_changes_the_math_exits_2_with_one_line(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main([*_set_args({**TINY, "train.epochs": 1}), "--out", out]) == 0
    capsys.readouterr()
    assert main([*_set_args({**TINY, "train.epochs": 2}), "--out", out, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "train.epochs=1" in err and "train.epochs=2" in err and "--set train.epochs=1" in err
    # Only a refused config is bad input: a checkpoint that cannot be loaded is still exit 1.
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"torn")
    assert main([*_set_args({**TINY, "train.epochs": 1}), "--out", out, "--resume"]) == 1
    assert "cannot be loaded" in capsys.readouterr().err


def test_main__redirected_to_a_file_writes_one_line_per_epoch_without_the_bar(tmp_path):
    # train.progress=true asks for the bar, but stderr is a file: only the epoch lines may land in it.
    args = _set_args({**TINY, "train.epochs": 2, "train.progress": True})
    log = tmp_path / "run.log"
    with log.open("wb") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "jepa_core.train", *args, "--out", str(tmp_path / "run")],
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "\r" not in text
    epochs = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert [line.split(" |")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"], text
    assert all(re.search(r" \| loss \d.* \| eta \d+(s|m\d\ds|h\d\dm)$", line) for line in epochs), text
    assert epochs[-1].endswith(" | eta 0s")


def test_trainer__draws_the_bar_only_on_a_terminal(tmp_path, tiny_config, monkeypatch):
    wanted = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"progress": True})})
    assert not Trainer(wanted, tmp_path).progress  # pytest's captured stderr is no terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert Trainer(wanted, tmp_path).progress
    assert not Trainer(tiny_config, tmp_path).progress  # train.progress=false: never
    assert not Trainer(wanted, tmp_path, progress=False).progress


def test_train__checkpoint_without_one_pass_resumes_only_as_the_variant(tmp_path, tiny_config):
    variant = tiny_config.model_copy(
        update={
            "predictor": tiny_config.predictor.model_copy(update={"one_pass": True}),
            "train": tiny_config.train.model_copy(update={"epochs": 1}),
        }
    )
    path = Trainer(variant, tmp_path).save()
    # What a checkpoint written before predictor.one_pass existed holds.
    state = load_checkpoint(path)
    del state["config"]["predictor"]["one_pass"]
    save_checkpoint(path, state)

    assert checkpoint_config(load_checkpoint(path)).predictor.one_pass is True
    paper = variant.model_copy(update={"predictor": variant.predictor.model_copy(update={"one_pass": False})})
    with pytest.raises(
        ResumeMismatchError, match=r"predictor\.one_pass=false: pass --set predictor\.one_pass=true"
    ):
        train(paper, tmp_path, resume_from=path)
    check_resumable(load_checkpoint(path), variant, path)
    Trainer(variant, tmp_path / "resumed").restore(path)  # the variant's weights load into the variant
    # Loading for evaluation needs no predictor at all.
    assert jepa_core.load_encoder(path)(torch.zeros(2, 1, 16, 16)).shape == (2, variant.model.embed_dim)
    assert len(jepa_core.load_eval_dataset(path, "validation")) == 359


def test_train__nan_loss_raises_divergence_with_epoch_and_step(tmp_path, tiny_config, monkeypatch):
    from jepa_core.models import IJepa

    real = IJepa.loss
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        loss = real(self, *args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(IJepa, "loss", poisoned)
    with pytest.raises(DivergenceError, match="epoch 1, step 3"):
        train(tiny_config, tmp_path)


def _live(kind: type) -> int:
    gc.collect()
    return sum(issubclass(type(o), kind) for o in gc.get_objects())


def _live_tensor_bytes() -> int:
    gc.collect()
    return sum(o.untyped_storage().nbytes() for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


class _Stopped(BaseException):
    """What a scheduler raises inside ``on_epoch`` to stop a trial (Ray Tune raises SystemExit)."""


@pytest.mark.parametrize("ending", ["finished", "stopped_early", "raised_in_on_epoch"])
def test_train__frees_model_and_optimizer_however_it_ends(tmp_path, tiny_config, ending):
    cfg = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    on_epoch = {"finished": None, "stopped_early": lambda r: r.epoch < 2}.get(ending)
    if ending == "raised_in_on_epoch":

        def on_epoch(report):
            raise _Stopped

    assert _live(IJepa) == 0
    baseline = _live_tensor_bytes()
    try:
        train(cfg, tmp_path, on_epoch=on_epoch)
    except _Stopped as stopped:
        # The traceback still holds train()'s frames, as it does while Ray handles a stopped trial.
        assert stopped.__traceback__ is not None
        assert _live(IJepa) == 0 and _live(torch.optim.Optimizer) == 0
    assert _live(IJepa) == 0 and _live(torch.optim.Optimizer) == 0
    model_bytes = sum(p.numel() * 4 for p in build_ijepa(cfg, 1).parameters())
    assert _live_tensor_bytes() - baseline < model_bytes  # not even one copy of the weights is left
    if torch.cuda.is_available():  # the same on a GPU, where the caching allocator could hide a leak
        before = torch.cuda.memory_allocated()
        gpu = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": "cuda"})})
        train(gpu, tmp_path / "cuda")
        assert torch.cuda.memory_allocated() <= before


def test_train__precision_bf16_autocasts_the_cpu_step(tmp_path, monkeypatch):
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = build_config(overrides=[TINY, {"train.epochs": 1, "train.precision": precision}])
        train(cfg, tmp_path / precision)
        losses[precision] = _losses(tmp_path / precision)[0]
    # Same batches, masks and weights: only the precision differs, so the losses differ a little, not a lot.
    assert losses["bf16"] != losses["fp32"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
    # A CPU without bf16 instructions emulates them: said once, in one line, as the run starts.
    bf16 = build_config(overrides=[TINY, {"train.precision": "bf16"}])
    for native, warned in ((False, True), (True, False), (None, False)):
        monkeypatch.setattr(jepa_core.machine, "cpu_native_bf16", lambda native=native: native)
        logs: list[str] = []
        assert Trainer(bf16, tmp_path / "t", log=logs.append).amp is torch.bfloat16
        warnings = [line for line in logs if line.startswith("warning: train.precision=bf16")]
        assert len(warnings) == warned and all("slower than in fp32" in line for line in warnings)
