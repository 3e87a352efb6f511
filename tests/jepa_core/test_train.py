from __future__ import annotations

import dataclasses
import gc
import json

import pytest
import torch

import jepa_core
from jepa_core.checkpoint import CheckpointError, read_extra_state
from jepa_core.config import build_config
from jepa_core.models import IJepa
from jepa_core.train import DivergenceError, train

from .conftest import TINY


def _losses(out):
    return [json.loads(line)["train_loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_train__resume_continues_exactly(tmp_path):
    cfg = build_config(overrides=[TINY, {"train.epochs": 4, "eval.every": 2}])
    straight = train(cfg, tmp_path / "a")
    stop_after_two = lambda report: report.epoch < 2  # noqa: E731 - an "interrupted" run
    train(cfg, tmp_path / "b", on_epoch=stop_after_two)
    assert len(_losses(tmp_path / "b")) == 2
    resumed = train(cfg, tmp_path / "b", resume_from=tmp_path / "b" / "checkpoint.pt")
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")
    assert resumed["probe_acc"] == straight["probe_acc"]
    assert resumed["epoch"] == 4


def test_train__on_epoch_gets_metrics_and_checkpoint(tmp_path, tiny_config):
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=2))
    reports = []
    train(cfg, tmp_path, on_epoch=reports.append, extra_state={"run_id": "abc"})
    assert [r.epoch for r in reports] == [1, 2]
    for key in ("train_loss", "probe_acc", "knn_acc", "rankme", "img_per_s", "epoch_time_s"):
        assert key in reports[-1].metrics
    assert reports[-1].checkpoint_path.is_file()
    assert read_extra_state(reports[-1].checkpoint_path) == {"run_id": "abc"}
    assert (tmp_path / "config.yaml").read_text().startswith("data:")


def test_train__zero_epochs_writes_random_init_checkpoint(tmp_path, tiny_config):
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=0))
    final = train(cfg, tmp_path)
    assert final["epoch"] == 0 and 0 <= final["probe_acc"] <= 1
    encoder = jepa_core.load_encoder(tmp_path / "checkpoint.pt")
    dataset = jepa_core.load_eval_dataset(tmp_path / "checkpoint.pt", "test")
    image, label = dataset[0]
    assert image.shape == (1, 16, 16) and isinstance(label, int)
    feats = encoder(torch.stack([dataset[i][0] for i in range(4)]))
    assert feats.shape == (4, cfg.model.embed_dim)
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())


def test_train__unreadable_checkpoint_is_an_error(tmp_path, tiny_config):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        train(tiny_config, tmp_path / "run", resume_from=bad)


def test_train__checkpoint_of_another_config_is_refused(tmp_path, tiny_config):
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=1))
    train(cfg, tmp_path)
    other = dataclasses.replace(cfg, mask=dataclasses.replace(cfg.mask, ratio=0.6))
    with pytest.raises(CheckpointError, match="mask.ratio"):
        train(other, tmp_path, resume_from=tmp_path / "checkpoint.pt")


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
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=3))
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
    model_bytes = sum(p.numel() * 4 for p in IJepa(cfg, 1).parameters())
    assert _live_tensor_bytes() - baseline < model_bytes  # not even one copy of the weights is left
    if torch.cuda.is_available():  # the same on a GPU, where the caching allocator could hide a leak
        before = torch.cuda.memory_allocated()
        gpu = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cuda"))
        train(gpu, tmp_path / "cuda")
        assert torch.cuda.memory_allocated() <= before
