"""One trial's network and record: what a found mask trains as, and what its trained sub-network is.

A node mask trains as the compacted, smaller dense network; a weight mask as the full-size parent
with its masked weights held at zero. The record holds the sub-network's size and cost measured the
same way for every finder and control (weight space: kept weights, sparse FLOPs, connectivity).
"""

from __future__ import annotations

import copy
import functools
import math

import torch

from ..data import Dataset
from ..finders import get_finder
from ..finders.base import Found
from ..masks import NodeMask, WeightMask, compact, connected, count_flops, count_params, weight_sparsity
from ..models import Parent
from ..store import TrialRecord
from ..timing import measure_latency
from ..train import TrainResult
from .plan import PlannedTrial


def _finite_or_inf(x: float) -> float:
    return x if math.isfinite(x) else math.inf


def build_net(parent: Parent, found: Found) -> tuple[Parent, dict[str, torch.Tensor] | None]:
    """The network a trial trains and its weight masks: a node mask is compacted to a smaller dense
    net; a weight mask keeps the parent's size, its masked weights held at zero by the masks.

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 8, 8), 10, 0, (8, 4))
    >>> net, masks = build_net(p, Found(NodeMask(((0, 1), (2,))))); tuple(net.fc1.weight.shape), masks
    ((2, 64), None)
    """
    start = parent
    if found.init is not None:
        start = copy.deepcopy(parent)
        start.load_state_dict(found.init)
    if isinstance(found.mask, NodeMask):
        return compact(start, found.mask), None
    found.mask.validate(parent)
    net = start if start is not parent else copy.deepcopy(parent)
    return net, found.mask.float_masks()


def _size(parent: Parent, data: Dataset, found: Found, net: Parent) -> dict:
    """Sparsities, size and cost of the sub-network `found` describes (`net` is what trains)."""
    groups = parent.node_groups()
    if isinstance(found.mask, NodeMask):
        return dict(
            node_sparsity=found.mask.node_sparsity(groups),
            weight_sparsity=weight_sparsity(parent, net),
            params=count_params(net),
            flops=count_flops(net, data.input_shape),
            kept_nodes=found.mask.kept_counts(),
            node_mask=found.mask.kept,
            kept_weights=tuple(dict(net.named_parameters())[n].numel() for n in net.prunable_weights()),
            effective_sparsity=weight_sparsity(parent, net),
            collapsed=False,
        )
    mask: WeightMask = found.mask
    kept = dict(zip(mask.tensors, mask.kept_counts()))
    effective = connected(parent, mask, data.input_shape)
    # a hidden node is alive if one of its incoming weights lies on an input-output path
    alive = []
    for g in groups:
        rows = [sl for sl in g.producers if sl.tensor in effective.tensors]
        reached = [sl.rows(effective.tensors[sl.tensor], g.size).any(1) for sl in rows]
        alive.append(int(functools.reduce(torch.logical_or, reached).sum()))
    prunable = sum(mask.sizes())
    return dict(
        node_sparsity=1.0 - sum(alive) / sum(g.size for g in groups),
        weight_sparsity=mask.sparsity(),
        params=count_params(net) - prunable + sum(kept.values()),
        flops=count_flops(net, data.input_shape, kept),
        kept_nodes=tuple(alive),
        node_mask=(),
        kept_weights=tuple(kept.values()),
        effective_sparsity=effective.sparsity(),
        # no path left from input to output (in a chain, an emptied layer leaves none; in a ResNet an
        # emptied block conv or projection shortcut does not: the residual stream still carries the input)
        collapsed=sum(effective.kept_counts()) == 0,
    )


def latency_of(net: Parent, data: Dataset) -> float:
    """Milliseconds of one forward pass at batch 1 on the net's device (median of 50, after 10)."""
    was_training = net.training
    lat = measure_latency(net.eval(), data.test.x[:1].to(next(net.parameters()).device))
    net.train(was_training)
    return lat.median_ms


def record_of(
    parent: Parent,
    data: Dataset,
    planned: PlannedTrial,
    found: Found,
    net: Parent,
    result: TrainResult,
    k: int,
    space: str,
    timed: bool = False,
) -> TrialRecord:
    """The record of one trained trial; `timed` (hardware-aware runs) measures the latency of the
    trained sub-network of front slots, their random twins and the dense parent."""
    curve = result.curve
    size = _size(parent, data, found, net)
    # a front slot has no target sparsity: it is recorded at the node sparsity its member has
    sparsity = size["node_sparsity"] if planned.slot >= 0 else planned.sparsity
    timed = timed and (planned.slot >= 0 or get_finder(planned.finder).sparsity_free)
    # Best and convergence epochs are read from trained epochs (1..E): epoch 0 is the untrained
    # init, and a net whose validation loss never beats its init must not score "converged at 0".
    trained = curve[1:] or curve
    best = max(trained, key=lambda e: (e.val_acc, -e.epoch))  # highest val acc, earliest on ties
    conv = min(trained, key=lambda e: (_finite_or_inf(e.val_loss), e.epoch))
    done = result.status == "done"
    return TrialRecord(
        key=planned.key,
        finder=planned.finder,
        sparsity=sparsity,
        seed=planned.seed,
        status=result.status,
        final_test_acc=curve[-1].test_acc if done else math.nan,
        best_val_epoch=best.epoch,
        best_val_test_acc=best.test_acc,
        min_val_loss_epoch=conv.epoch,
        wall_seconds=result.wall_seconds / k,  # this trial's share of its population's time
        search=found.cost,
        device=str(next(net.parameters()).device),
        control=planned.control,
        population=k,
        space="node" if get_finder(planned.finder).sparsity_free else space,
        check=planned.check,
        curve=curve,
        spec=planned.spec,
        slot=planned.slot,
        latency_ms=latency_of(net, data) if timed else math.nan,
        **size,
    )
