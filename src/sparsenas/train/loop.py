"""The one training loop: every trial (dense parent, random control, every finder) goes through it.

The data order of a trial is fixed by its `data_seed` alone: epoch e's permutation is the e-th draw
of a generator seeded with `data_seed`, so every trial of a seed sees the same minibatches in the same
order. A non-finite loss stops the trial at the end of that epoch and marks it diverged; the run goes on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..data import Dataset, Split, batches
from .records import EpochRecord
from .spec import TrainSpec

EVAL_BATCH = 4096  # evaluation only: big batches are faster and change no number that matters


@dataclass(frozen=True)
class TrainResult:
    curve: tuple[EpochRecord, ...]
    status: str  # "done" or "diverged"
    wall_seconds: float
    steps: int = 0  # optimizer steps taken
    samples: int = 0  # training samples those steps processed


@torch.no_grad()
def evaluate(model: nn.Module, split: Split) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of `model` on `split`.

    >>> from sparsenas.data import load_dataset
    >>> from sparsenas.models import build_parent
    >>> ds = load_dataset("digits"); m = build_parent("mlp", ds.input_shape, 10, seed=0)
    >>> loss, acc = evaluate(m, ds.val); 0.0 <= acc <= 1.0
    True
    """
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for xb, yb in batches(split, EVAL_BATCH):
        logits = model(xb)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += int((logits.argmax(1) == yb).sum())
    model.train(was_training)
    n = len(split)
    return loss_sum / n, correct / n


def make_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    """The optimizer `spec` names, over all of `model`'s parameters.

    >>> type(make_optimizer(nn.Linear(2, 2), TrainSpec(optimizer="adam"))).__name__
    'Adam'
    """
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    if spec.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    raise ValueError(f"unknown optimizer {spec.optimizer!r}")


def _lr_factor(spec: TrainSpec, step: int, total: int) -> float:
    if spec.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / max(1, total)))
    return 1.0


def _record(model: nn.Module, data: Dataset, epoch: int, train_loss: float) -> EpochRecord:
    val_loss, val_acc = evaluate(model, data.val)
    _, test_acc = evaluate(model, data.test)
    return EpochRecord(epoch, train_loss, val_loss, val_acc, test_acc)


def train(
    model: nn.Module,
    data: Dataset,
    spec: TrainSpec,
    data_seed: int,
    max_steps: int | None = None,
    callbacks: Sequence[Callable[[EpochRecord], None]] = (),
) -> TrainResult:
    """Train `model` in place for `spec.epochs` epochs (or `max_steps` steps) and return its curve.

    The curve starts at epoch 0 (at init) and holds one record per completed epoch. With `max_steps`
    (used by proxies that score a candidate after k steps) training stops after that many steps and
    no curve is recorded.

    >>> from sparsenas.data import load_dataset
    >>> from sparsenas.models import build_parent
    >>> ds = load_dataset("digits"); m = build_parent("mlp", ds.input_shape, 10, seed=0)
    >>> r = train(m, ds, TrainSpec(epochs=2), data_seed=0); [e.epoch for e in r.curve], r.status
    ([0, 1, 2], 'done')
    """
    start = time.perf_counter()
    opt = make_optimizer(model, spec)
    order = torch.Generator().manual_seed(data_seed)
    steps_per_epoch = math.ceil(len(data.train) / spec.batch_size)
    total = spec.epochs * steps_per_epoch
    curve: list[EpochRecord] = []
    if max_steps is None:
        curve.append(_record(model, data, 0, evaluate(model, data.train)[0]))
        for cb in callbacks:
            cb(curve[-1])
        if not math.isfinite(curve[0].val_loss):
            # non-finite outputs at init (e.g. inputs with inf): nothing to train
            return TrainResult(tuple(curve), "diverged", time.perf_counter() - start)
    model.train()
    step, samples, status = 0, 0, "done"
    for epoch in range(1, spec.epochs + 1):
        # Losses are summed on the device and checked once per epoch: a per-step `.item()` would
        # stall a GPU on every step. A NaN mid-epoch propagates to the sum, so nothing is missed;
        # the diverged epoch is simply not recorded.
        loss_sum = torch.zeros((), dtype=torch.float64, device=next(model.parameters()).device)
        n_batches = 0
        for xb, yb in batches(data.train, spec.batch_size, order):
            for group in opt.param_groups:
                group["lr"] = spec.lr * _lr_factor(spec, step, total)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            n_batches += 1
            step += 1
            samples += len(yb)
            if max_steps is not None and step >= max_steps:
                break
        if not torch.isfinite(loss_sum):
            status = "diverged"
            break
        if max_steps is not None and step >= max_steps:
            break
        rec = _record(model, data, epoch, loss_sum.item() / n_batches)
        if not math.isfinite(rec.val_loss):
            # weights went non-finite on the last step: the epoch is not a valid point of the curve
            status = "diverged"
            break
        curve.append(rec)
        for cb in callbacks:
            cb(rec)
    return TrainResult(tuple(curve), status, time.perf_counter() - start, step, samples)
