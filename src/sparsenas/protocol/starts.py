"""Where a found sub-network starts (Liu, Sun, Zhou, Huang & Darrell, ICLR 2019, "Rethinking the
Value of Network Pruning"), each start one more arm of its finder, paired with it by seed:

- θ0 restricted to the mask (no start named): the lottery-ticket protocol, and every control's start.
- `scratch-e`: a fresh initialization of the sub-network, trained the run's epochs. In the node space
  the compacted network is initialized as itself (its own fan-in, as the paper trains the pruned
  architecture from scratch); in the weight space the parent is drawn again (as the `reinit` check).
- `scratch-b`: the same, trained for the dense parent's training FLOPs: epochs x FLOPs(parent) /
  FLOPs(sub-network), at most `--scratch-b-cap` (default 2) times the epochs, the paper's rule on
  ImageNet; 0 lifts the cap, as their CIFAR code does (rounded half up to
  whole epochs, so the learning-rate schedule runs its full course). FLOPs are the record's: the
  compacted net's, or a weight-masked net's kept multiply-adds.
- `finetune`: the trained parent's weights restricted to the mask (the net the finder ranked, when it
  trained one; else the seed's trained dense parent), fine-tuned for `--finetune-epochs` at the
  constant `--finetune-lr`: the classic prune-then-fine-tune. Its search cost adds the parent's
  training where the finder's own search did not pay for it.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch

from ..finders import SearchContext
from ..finders.base import Found
from ..finders.scoring import add_costs, trained_dense
from ..masks import NodeMask, compact, count_flops, expand
from ..models import initialize
from ..train import TrainSpec
from .spec import SCRATCH_B_CAP, RunSpec


def scratch_b_epochs(epochs: int, parent_flops: int, sub_flops: int, cap: float = SCRATCH_B_CAP) -> int:
    """Scratch-B's epochs: the parent's training FLOPs spent on the sub-network, at most `cap` x
    `epochs` (0: no cap), rounded half up.

    >>> scratch_b_epochs(10, 1000, 800), scratch_b_epochs(10, 1000, 100), scratch_b_epochs(3, 10, 10)
    (13, 20, 3)
    >>> scratch_b_epochs(10, 1000, 100, cap=0)
    100
    """
    ratio = parent_flops / max(1, sub_flops)
    if cap:
        ratio = min(cap, ratio)
    return max(epochs, math.floor(epochs * ratio + 0.5))


def start_from(start: str, base: Found, ctx: SearchContext, spec: RunSpec, generator: torch.Generator) -> Found:
    """The finder's answer `base` for `ctx` under `start`: the same mask, another init and budget.

    >>> from sparsenas.data import load_dataset; from sparsenas.models import build_parent
    >>> from sparsenas.train import TrainSpec
    >>> ds = load_dataset("digits", limit=32); p = build_parent("mlp", ds.input_shape, 10, 0, (8, 4))
    >>> ctx = SearchContext(p, ds, TrainSpec(epochs=4), 0.5, 0, torch.Generator(), {})
    >>> f = start_from("scratch-b", Found(NodeMask(((0, 1, 2, 3), (0, 1)))), ctx, RunSpec(train=TrainSpec(epochs=4)), torch.Generator())
    >>> f.train.epochs  # 4 epochs x (1,168 / 568 FLOPs of parent / sub-network = 2.06, capped at 2)
    8
    """
    parent, mask = ctx.parent, base.mask
    if start == "finetune":
        if base.trained is not None:
            trained, cost = base.trained, base.cost
        else:
            net, dense_cost = trained_dense(ctx)
            trained, cost = net.state_dict(), add_costs(base.cost, dense_cost)
        epochs, lr = spec.finetune_budget()
        tuned = dataclasses.replace(spec.train, epochs=epochs, lr=lr, schedule="constant")
        return Found(mask, cost, base.scores, {n: t.detach().clone() for n, t in trained.items()}, train=tuned)
    if start not in ("scratch-e", "scratch-b"):
        raise ValueError(f"unknown start {start!r}")
    # drawn on the CPU, whatever the run's device (a CPU generator cannot fill CUDA tensors), so a
    # start's init is the same number on every device; build_net copies it to the parent's device
    cpu = copy.deepcopy(parent).cpu()
    if isinstance(mask, NodeMask):
        small = compact(cpu, mask)
        initialize(small, generator)  # the sub-network's own init: its fans, not the parent's
        init = expand(cpu, mask, small).state_dict()
        sub_flops = count_flops(small, ctx.data.input_shape)
    else:
        initialize(cpu, generator)  # the parent drawn again; the mask then holds its pruned weights at zero
        init = cpu.state_dict()
        sub_flops = count_flops(parent, ctx.data.input_shape, dict(zip(mask.tensors, mask.kept_counts())))
    budget: TrainSpec | None = None
    if start == "scratch-b":
        epochs = scratch_b_epochs(spec.train.epochs, count_flops(parent, ctx.data.input_shape), sub_flops, spec.scratch_b_cap)
        budget = dataclasses.replace(spec.train, epochs=epochs)
    return Found(mask, base.cost, base.scores, init, train=budget)
