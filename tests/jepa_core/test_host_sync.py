"""The device part of a training step never waits for the host (counted with a TorchDispatchMode, on CPU)."""

from __future__ import annotations

import pytest
import torch

from jepa_core import trainer as jtrainer
from jepa_core.config import build_config
from jepa_core.host_sync import SyncCounter
from jepa_core.models import Packing
from jepa_core.step import train_step
from jepa_core.train import train
from tests.jepa_core.conftest import TINY


def test_sync_counter__counts_a_deliberate_item_and_nonzero_and_nothing_else() -> None:
    x = torch.randn(8)
    with SyncCounter() as counter:
        y = (x * 2).sum()
        y.item()
        float(y)
        (x > 0).nonzero()
        torch.repeat_interleave(x, 2)  # a static repeat count: shape known on the host
        torch.repeat_interleave(x, torch.full((8,), 2), output_size=16)
    assert counter.counts == {"_local_scalar_dense": 2, "nonzero": 1}
    assert counter.total == 3


@pytest.mark.parametrize("one_pass", [False, True])
def test_train_step__device_part_has_no_host_sync(tmp_path, one_pass: bool) -> None:
    cfg = build_config(overrides=[TINY, {"predictor.one_pass": one_pass, "optim.grad_clip": 1.0}])
    trainer = jtrainer.Trainer(cfg, tmp_path)
    gen = torch.Generator().manual_seed(0)
    images = next(iter(trainer.data.batches(1, gen, 1, 0)))
    host = trainer.sampler(images.shape[0], gen)
    assert not bool(host.context_valid.all())  # padded contexts: the packed, masked path runs
    packing = Packing.of(host.context_valid)
    kwargs = dict(lr=1e-3, wd=0.04, momentum=0.996, loss_kind="l2", amp=None, grad_clip=1.0)
    for _ in range(2):  # the first AdamW step creates its state; the second is the steady one
        with SyncCounter() as counter:
            train_step(trainer.model, trainer.optimizer, images, host, packing=packing, **kwargs)
        assert counter.counts == {}
    # The control: without the host-built packing the step runs nonzero itself, and the counter sees it.
    with SyncCounter() as counter:
        train_step(trainer.model, trainer.optimizer, images, host, **kwargs)
    assert counter.counts == {"nonzero": 1}


def test_trainer__every_step_of_an_epoch_runs_without_host_sync(tmp_path, monkeypatch) -> None:
    counts: list[dict[str, int]] = []
    original = jtrainer.train_step

    def counted(*args, **kwargs):
        with SyncCounter() as counter:
            loss = original(*args, **kwargs)
        counts.append(dict(counter.counts))
        return loss

    monkeypatch.setattr(jtrainer, "train_step", counted)  # where the Trainer looks it up
    cfg = build_config(overrides=[TINY, {"train.epochs": 1, "eval.every": 0}])
    train(cfg, tmp_path)
    assert counts == [{}] * cfg.train.steps_per_epoch
