"""The four ways `sparsenas bench` trains a sub-network, and how one of them is timed.

(a) and (b) train the full-size masked parent (`_masked_alone`, batches from a DataLoader or from
in-memory tensors); (c) and (d) train compacted networks through the library's own `Population`
(`_population`, one network or K). Every method draws its minibatches in the same order (seed 0),
and every network trains in train mode (BatchNorm on batch statistics, updating its running ones).

A masked parent with BatchNorm stays the sub-network it stands for: the masks cover every tensor a
node group touches, BatchNorm's scale, shift and running statistics included, and are reapplied
after every step. A removed channel's conv output is exactly zero, its BatchNorm normalizes zeros
to zero and scales them by zero, so nothing of it reaches a kept weight or a kept statistic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..data import Split, batches
from ..masks import NodeMask, apply_weight_masks, weight_masks
from ..models import Parent
from ..train import Population, TrainSpec, peak_memory, reset_peak_memory

BATCH = 128
METHODS = {
    "a": "masked, DataLoader",
    "b": "masked, in-memory",
    "c": "compacted, alone",
    "d": "compacted population",
}


def _now(device: torch.device) -> float:
    # a GPU runs asynchronously: wait for its queued work, or the clock stops before the work does
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _minibatches(data: Split, loader: bool) -> Any:
    """Minibatches without end, every method in the same order (seed 0): a torch DataLoader over a
    dataset of samples, or slices of the in-memory tensors (`data.batches`)."""
    gen = torch.Generator().manual_seed(0)
    while True:
        if loader:  # what a user writes today: a Dataset of samples, collated per batch
            perm = torch.randperm(len(data), generator=gen)  # the draw `batches` makes, so orders agree
            yield from DataLoader(TensorDataset(data.x.cpu(), data.y.cpu()), batch_size=BATCH, sampler=perm.tolist())
        else:
            yield from batches(data, BATCH, gen)


def _masked_alone(parent: Parent, mask: NodeMask, data: Split, steps: int, spec: TrainSpec, loader: bool) -> tuple[Parent, float]:
    """Train the full-size masked parent for `steps` steps; returns it and the seconds it took."""
    masks = weight_masks(parent, mask)
    net = apply_weight_masks(parent, masks).train()
    device = data.x.device
    masks = {n: m.to(device) for n, m in masks.items()}
    tensors = dict(net.named_parameters()) | dict(net.named_buffers())  # BatchNorm's running statistics are masked too
    opt = torch.optim.SGD(net.parameters(), lr=spec.lr, momentum=spec.momentum)
    it = _minibatches(data, loader)
    start = _now(device)
    for _ in range(steps):
        xb, yb = next(it)
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for name, m in masks.items():
                tensors[name].mul_(m)  # keep the pruned weights (and statistics) at zero
    return net, _now(device) - start


def _population(nets: list[Parent], data: Split, steps: int, spec: TrainSpec) -> float:
    """Train `nets` together for `steps` steps (in place); returns the seconds it took."""
    pop = Population(nets, spec)
    it = _minibatches(data, loader=False)
    device = data.x.device
    start = _now(device)
    for _ in range(steps):
        xb, yb = next(it)
        pop.step(xb, yb, spec.lr)
    elapsed = _now(device) - start
    pop.write_back(nets)
    return elapsed


def _measure(device: torch.device, fn: Callable[[], float]) -> tuple[float, float, float]:
    """(seconds, peak MiB, added MiB) of one timed call."""
    before = reset_peak_memory(device) / 2**20  # also returns what earlier methods freed to the kernel
    seconds = fn()
    peak = peak_memory(device) / 2**20
    return seconds, peak, peak - before
