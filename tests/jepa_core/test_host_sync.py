"""The device part of a training step never waits for the host (counted with a TorchDispatchMode, on CPU)."""

from __future__ import annotations

import pytest
import torch

from jepa_core import trainer as jtrainer
from jepa_core.config import build_config
from jepa_core.host_sync import SyncCounter
from jepa_core.models import Packing
from jepa_core.step import device_masks, fixed_context_length, train_step
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


@pytest.mark.parametrize("one_pass", [False, True])
def test_fixed_length_layout__same_loss_and_gradients_as_packing_and_no_host_sync(
    tmp_path, one_pass: bool
) -> None:
    """The device (CUDA) layout, run here on the CPU: contexts padded to the sampler's maximum, nothing
    packed. Every batch has the same shapes, the loss and gradients are the packed path's, and the device part
    reads nothing back."""
    cfg = build_config(overrides=[TINY, {"predictor.one_pass": one_pass}])
    trainer = jtrainer.Trainer(cfg, tmp_path)
    model = trainer.model
    assert trainer.fixed_context is None  # the CPU packs
    length = fixed_context_length(trainer.sampler, torch.device("cuda"))
    assert length == trainer.sampler.max_context
    gen = torch.Generator().manual_seed(0)
    images = next(iter(trainer.data.batches(1, gen, 1, 0)))
    shapes = set()
    for _ in range(20):
        host = trainer.sampler(images.shape[0], gen)
        assert host.context_idx.shape[1] <= length  # the bound holds
        padded, packing = device_masks(host, torch.device("cpu"), length)
        shapes.add(tuple(padded.context_idx.shape))
        assert packing.index is None and not packing.packed
        assert torch.equal(padded.context_valid.sum(1), host.context_valid.sum(1))
    assert shapes == {(images.shape[0], length)}
    packed_masks, packed = device_masks(host, torch.device("cpu"), None)
    assert packed.packed

    def loss_and_grads(masks, packing):
        model.zero_grad(set_to_none=True)
        loss = model.loss(images, masks.context_idx, masks.context_valid, masks.target_idx, "l2", packing)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    loss_p, grads_p = loss_and_grads(packed_masks, packed)
    with SyncCounter() as counter:
        loss_f, grads_f = loss_and_grads(padded, packing)
    assert counter.counts == {}
    torch.testing.assert_close(loss_f, loss_p, rtol=1e-5, atol=1e-6)
    assert len(grads_f) == len(grads_p)
    for g_f, g_p in zip(grads_f, grads_p, strict=True):
        torch.testing.assert_close(g_f, g_p, rtol=1e-4, atol=1e-6)
    kwargs = dict(lr=1e-3, wd=0.04, momentum=0.996, loss_kind="l2", amp=None, grad_clip=1.0)
    with SyncCounter() as counter:
        train_step(model, trainer.optimizer, images, padded, packing=packing, **kwargs)
    assert counter.counts == {}


def test_padded_to__refuses_a_context_longer_than_the_length(tmp_path) -> None:
    cfg = build_config(overrides=[TINY])
    trainer = jtrainer.Trainer(cfg, tmp_path)
    host = trainer.sampler(4, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="does not fit"):
        host.padded_to(host.context_idx.shape[1] - 1)


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
