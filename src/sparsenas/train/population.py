"""The one training loop: K same-shape networks trained together, as stacked weights, on the same
minibatches. K = 1 is an ordinary trial.

Every member has its own weights, optimizer state, learning curve and divergence check; how K
networks train as one set of stacked tensors, and why that equals K separate trainings, is
`stacked.py`. A member whose loss or weights turn non-finite is marked diverged at the end of that
epoch and dropped from the stacks (with its optimizer state); the others go on undisturbed.

The data order of a trial is fixed by its `data_seed` alone: epoch e's permutation is the e-th draw
of a generator seeded with `data_seed`, so every trial of a seed sees the same minibatches. With
`spec.augment` the training batches (never the evaluated splits) are augmented by draws seeded from
`data_seed` and the epoch alone (`augment.py`), so they stay the same for every trial of a seed too.
Members of one population may have different data seeds (trials of several seeds trained together):
each seed's batches are drawn as they would be alone, and each member steps on its own seed's batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..data import Dataset, Split, batch_indices
from ..measures import EpochRecord
from .augment import check_augment, epoch_augment
from .loss import member_losses  # importable from here as before, as are stacked.py's names below
from .spec import TrainSpec
from .stacked import Forward, Population, make_stacked_optimizer, stacked_forward_of

__all__ = [
    "Checkpoints",
    "Forward",
    "MemberHook",
    "Population",
    "TrainResult",
    "lr_factor",
    "make_stacked_optimizer",
    "member_losses",
    "stacked_forward_of",
    "total_steps",
    "train_population",
]

# on_epoch(member index, the member's new curve point)
MemberHook = Callable[[int, EpochRecord], None]


@dataclass(frozen=True)
class Checkpoints:
    """Validation checks every `every` optimizer steps, with a say in who trains on: `stop(step,
    members, val_accs)` gets the members still in (indices into the nets) and their validation
    accuracies, and returns those to stop now (status "stopped", their weights as they are). A
    member whose validation loss is not finite at a check is marked diverged there and is not
    passed on. How learning-curve search (`lce-search`) stops candidates it predicts will lose.

    >>> Checkpoints(5, lambda step, members, accs: []).every
    5
    """

    every: int
    stop: Callable[[int, list[int], list[float]], Sequence[int]]
    split: Split | None = None  # what a read evaluates; the data's validation split if None


@dataclass(frozen=True)
class TrainResult:
    curve: tuple[EpochRecord, ...]
    status: str  # "done", "diverged", or "stopped" (by `Checkpoints.stop`)
    wall_seconds: float  # of the whole population's training
    steps: int = 0  # optimizer steps this member took
    samples: int = 0  # training samples those steps processed


def total_steps(spec: TrainSpec, n_train: int) -> int:
    """Optimizer steps of a whole budget: every epoch's batches, the last one short.

    >>> total_steps(TrainSpec(epochs=2, batch_size=64), 130)
    6
    """
    return spec.epochs * math.ceil(n_train / spec.batch_size)


def lr_factor(spec: TrainSpec, step: int, total: int) -> float:
    """The schedule's multiplier of the learning rate at `step` of `total`.

    >>> lr_factor(TrainSpec(schedule="cosine"), 5, 10)
    0.5
    """
    if spec.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / max(1, total)))
    return 1.0


def _batch(
    train: Split,
    parts: Sequence[torch.Tensor],
    distinct: list[int],
    row_seeds: list[int],
    augments: Sequence[Callable[..., torch.Tensor] | None],
    start: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's batch: x (B, ...), y (B,) when every member has one seed; else x (K, B, ...),
    y (K, B), row r the batch of the member in row r, whose seed is `row_seeds[r]`.

    `parts[i]` holds the sample indices of seed `distinct[i]`'s batch, `augments[i]` its epoch's
    augmentation (applied at the batch's place `start` in the epoch's order). Without augmentation
    the rows are gathered from the split in one indexing, not per seed and then stacked and picked.
    """
    if len(distinct) == 1:
        x = train.x.index_select(0, parts[0])
        aug = augments[0]
        return (aug(x, start=start) if aug is not None else x), train.y.index_select(0, parts[0])
    rows = torch.tensor([distinct.index(s) for s in row_seeds], device=parts[0].device)
    if all(a is None for a in augments):
        idx = torch.stack(list(parts)).index_select(0, rows)  # (K, B) sample indices
        x = train.x.index_select(0, idx.flatten())
        return x.view(*idx.shape, *x.shape[1:]), train.y.index_select(0, idx.flatten()).view(idx.shape)
    wanted = set(row_seeds)  # augmented only where a member still trains on them
    xs = []
    for s, aug, idx in zip(distinct, augments, parts):
        x = train.x.index_select(0, idx)
        xs.append(aug(x, start=start) if aug is not None and s in wanted else x)
    return torch.stack(xs).index_select(0, rows), torch.stack([train.y.index_select(0, i) for i in parts]).index_select(0, rows)


def train_population(
    nets: Sequence[nn.Module],
    data: Dataset,
    spec: TrainSpec,
    data_seed: int | Sequence[int],
    max_steps: int | None = None,
    on_epoch: MemberHook | None = None,
    masks: Sequence[dict[str, torch.Tensor]] | None = None,
    checkpoints: Checkpoints | None = None,
) -> list[TrainResult]:
    """Train the same-shape `nets` together, in place, for `spec.epochs` epochs (or `max_steps`).

    `data_seed` fixes the data order (and augmentation) of every net, or of each net when it is a
    sequence of one seed per net; nets of one seed step on the very same batches.
    `masks`, one {weight name: 0/1 tensor} per net, trains weight-masked nets (see `Population`).
    `checkpoints` reads every member's validation accuracy every `every` steps and stops those its
    `stop` names; the others train on undisturbed (a member's arithmetic never depends on another's).

    Returns one result per net, in order. A curve starts at epoch 0 (at init) and holds one record
    per completed epoch; with `max_steps` (proxies that score a candidate after k steps) training
    stops after that many steps and no curve is recorded.

    >>> from sparsenas.data import load_dataset
    >>> from sparsenas.models import build_parent
    >>> ds = load_dataset("digits"); nets = [build_parent("mlp", ds.input_shape, 10, seed=s) for s in (0, 1)]
    >>> rs = train_population(nets, ds, TrainSpec(epochs=2), data_seed=0)
    >>> [([e.epoch for e in r.curve], r.status) for r in rs]
    [([0, 1, 2], 'done'), ([0, 1, 2], 'done')]
    >>> rs = train_population(nets, ds, TrainSpec(epochs=1), data_seed=[0, 1]); [r.status for r in rs]
    ['done', 'done']
    """
    check_augment(spec, data)  # tabular data cannot be cropped: refused before anything trains
    start = time.perf_counter()
    seeds = [data_seed] * len(nets) if isinstance(data_seed, int) else [int(s) for s in data_seed]
    if len(seeds) != len(nets):
        raise ValueError(f"give one data seed per net: {len(nets)} nets, {len(seeds)} seeds")
    distinct = list(dict.fromkeys(seeds))  # one data order each; a member steps on its seed's batches
    pop = Population(nets, spec, masks)
    k = pop.size
    curves: list[list[EpochRecord]] = [[] for _ in range(k)]
    status = ["done"] * k
    step, seen = 0, 0  # optimizer steps and samples so far: every member still in takes each step
    spent: dict[int, tuple[int, int]] = {}  # member -> (steps, samples) when it left

    def drop(bad_rows: list[int], why: str = "diverged") -> None:
        if bad_rows:
            pop.write_back(nets, bad_rows)  # a diverged (or stopped) net keeps the weights it left with
            for r in bad_rows:
                status[pop.members[r]] = why
                spent[pop.members[r]] = (step, seen)
            pop.keep([r for r in range(pop.size) if r not in set(bad_rows)])

    def check() -> None:
        assert checkpoints is not None
        losses, accs = pop.evaluate(data.val if checkpoints.split is None else checkpoints.split)
        # a member whose outputs turned non-finite has diverged: dropped now, as the epoch's end would
        drop([r for r, v in enumerate(losses) if not math.isfinite(v)])
        accs = [a for v, a in zip(losses, accs) if math.isfinite(v)]
        stop = set(checkpoints.stop(step, list(pop.members), accs)) if pop.size else set()
        drop([r for r, m in enumerate(pop.members) if m in stop], "stopped")

    def record(epoch: int, train_losses: list[float]) -> None:
        val_loss, val_acc = pop.evaluate(data.val)
        _, test_acc = pop.evaluate(data.test)
        bad = []
        for r, m in enumerate(pop.members):
            if not math.isfinite(val_loss[r]):
                # non-finite outputs: at init (inputs with inf) the curve keeps its epoch 0 and
                # there is nothing to train; later (weights broken on the epoch's last step) the
                # epoch is no valid point of the curve
                bad.append(r)
                if epoch > 0:
                    continue
            curves[m].append(EpochRecord(epoch, train_losses[r], val_loss[r], val_acc[r], test_acc[r]))
            if on_epoch:
                on_epoch(m, curves[m][-1])
        drop(bad)

    if max_steps is None:
        record(0, pop.evaluate(data.train)[0])
    orders = [torch.Generator().manual_seed(s) for s in distinct]
    total = total_steps(spec, len(data.train))
    for epoch in range(1, spec.epochs + 1):
        if pop.size == 0:
            break
        # Losses are summed on the device and checked once per epoch: a per-step `.item()` would
        # stall a GPU on every step. A NaN mid-epoch propagates to the member's sum.
        device = next(iter(pop.params.values())).device
        loss_sum = torch.zeros(pop.size, dtype=torch.float64, device=device)
        n_batches = 0
        augments = [epoch_augment(spec.augment, s, epoch, len(data.train), data.train.x.device) for s in distinct]
        # every seed's permutation is drawn from its own generator, so a seed's batches do not
        # depend on which other seeds share the population
        for parts in zip(*(batch_indices(len(data.train), spec.batch_size, g, data.train.x.device) for g in orders)):
            xb, yb = _batch(data.train, parts, distinct, [seeds[m] for m in pop.members], augments, n_batches * spec.batch_size)
            loss_sum += pop.step(xb, yb, spec.lr * lr_factor(spec, step, total))
            n_batches += 1
            step += 1
            seen += yb.shape[-1]  # samples per member: yb is (B,), or (K, B) with a batch per member
            if checkpoints is not None and step % checkpoints.every == 0:
                before = list(pop.members)
                check()
                if pop.size < len(before):  # the stopped members' loss sums leave with them
                    loss_sum = loss_sum[[before.index(m) for m in pop.members]]
                if pop.size == 0:
                    break
            if max_steps is not None and step >= max_steps:
                break
        sums = loss_sum.tolist()
        drop([r for r, v in enumerate(sums) if not math.isfinite(v)])
        sums = [v for v in sums if math.isfinite(v)]
        if max_steps is not None:
            if step >= max_steps:
                break
            continue  # a proxy's short training keeps no curve: no evaluation between its epochs
        if pop.size:
            record(epoch, [v / n_batches for v in sums])
    if pop.size:
        pop.write_back(nets)
    wall = time.perf_counter() - start
    return [TrainResult(tuple(curves[m]), status[m], wall, *spent.get(m, (step, seen))) for m in range(k)]
