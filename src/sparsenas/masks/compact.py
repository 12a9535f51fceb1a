"""Compaction: a node-masked parent is a smaller dense network.

Slicing the kept rows of each producer and the kept columns of each consumer gives a network whose
outputs equal the masked parent's (the masked parent computes zeros for removed nodes, which its
consumers' zeroed columns then ignore). Training the compacted network is training the masked one,
at a fraction of the cost. `weight_masks` gives the reverse view: the 0/1 mask of every parent tensor.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..models.base import NodeGroup, Parent
from .node import NodeMask


def _index_plan(groups: list[NodeGroup], mask: NodeMask, state: dict[str, torch.Tensor]) -> dict[str, list[tuple[int, torch.Tensor]]]:
    """For every tensor touched by a group: (dim, kept indices along dim), one entry per dim.

    Several groups may cut one dim (a layer reading a concatenation of two layers' channels: each
    group owns its range); entries no group owns are kept.
    """
    keep: dict[tuple[str, int], torch.Tensor] = {}
    for g, kept in zip(groups, mask.kept):
        k = torch.tensor(kept, dtype=torch.long)
        for sl in (*g.producers, *g.consumers):
            along = keep.setdefault((sl.tensor, sl.dim), torch.ones(state[sl.tensor].shape[sl.dim], dtype=torch.bool))
            along[sl.offset : sl.offset + g.size * sl.block] = False
            along[sl.indices(k)] = True  # node i owns [offset + i*block, offset + (i+1)*block)
    plan: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for (name, dim), along in keep.items():
        plan.setdefault(name, []).append((dim, along.nonzero().flatten()))
    return plan


def _set_tensor(model: nn.Module, name: str, value: torch.Tensor) -> None:
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    if isinstance(getattr(owner, attr), nn.Parameter):
        setattr(owner, attr, nn.Parameter(value, requires_grad=getattr(owner, attr).requires_grad))
    else:
        owner.register_buffer(attr, value)


def _fix_shape_attributes(model: nn.Module) -> None:
    """Keep `in_features` & co. truthful after slicing (they are read by repr, FLOP counters, export)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.out_features, m.in_features = m.weight.shape
        elif isinstance(m, nn.Conv2d):
            if m.groups > 1 and m.groups == m.out_channels:  # depthwise: one group per kept channel
                m.groups = m.weight.shape[0]
                setattr(m, "sparsenas_depthwise", True)  # still depthwise when one channel is left (groups=1)
            m.out_channels, m.in_channels = m.weight.shape[0], m.weight.shape[1] * m.groups
        elif isinstance(m, nn.modules.batchnorm._NormBase):
            per_channel = m.running_mean if m.running_mean is not None else m.weight
            if per_channel is not None:
                m.num_features = per_channel.shape[0]


def compact(parent: Parent, mask: NodeMask) -> Parent:
    """The smaller dense network holding `parent`'s weights for the kept nodes (parent untouched).

    >>> from sparsenas.models import build_parent
    >>> from sparsenas.masks import allocate, random_mask
    >>> p = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0)
    >>> m = random_mask(p.node_groups(), allocate(p.node_groups(), 0.8), torch.Generator().manual_seed(0))
    >>> c = compact(p, m); tuple(c.fc1.weight.shape), tuple(c.out.weight.shape)
    ((60, 784), (10, 20))
    """
    groups = parent.node_groups()
    mask.validate(groups)
    state = dict(parent.named_parameters()) | dict(parent.named_buffers())
    plan = _index_plan(groups, mask, state)
    # the tensors about to be sliced are not copied whole first (1.7 ms a LeNet-300-100, and random
    # search compacts every candidate): the copy holds empty stand-ins that _set_tensor replaces
    memo: dict[int, Any] = {}
    for name in plan:
        t = state[name]
        memo[id(t)] = nn.Parameter(t.new_empty(0), t.requires_grad) if isinstance(t, nn.Parameter) else t.new_empty(0)
    small = copy.deepcopy(parent, memo)
    for name, cuts in plan.items():
        t = state[name].detach()
        for dim, idx in cuts:
            t = t.index_select(dim, idx.to(t.device))
        _set_tensor(small, name, t.clone().contiguous())
    _fix_shape_attributes(small)
    # a compacted net knows its new widths, so its own node_groups() describe it
    if hasattr(small, "widths"):
        # setattr: Module's stub types every attribute assignment as a Tensor or Module
        setattr(small, "widths", mask.kept_counts())
    return small


def weight_masks(parent: Parent, mask: NodeMask) -> dict[str, torch.Tensor]:
    """0/1 float mask for every parent tensor a node group touches (1 = kept).

    >>> from sparsenas.models import build_parent
    >>> from sparsenas.masks import dense_mask
    >>> p = build_parent("mlp", (1, 8, 8), 10, 0, (8, 4))
    >>> sorted(weight_masks(p, dense_mask(p.node_groups())))
    ['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight', 'out.weight']
    """
    groups = parent.node_groups()
    mask.validate(groups)
    state = dict(parent.named_parameters()) | dict(parent.named_buffers())
    masks: dict[str, torch.Tensor] = {}
    for name, cuts in _index_plan(groups, mask, state).items():
        m = torch.ones_like(state[name], dtype=torch.float32)
        for dim, idx in cuts:
            keep = torch.zeros(m.shape[dim], dtype=torch.bool)
            keep[idx] = True
            shape = [1] * m.ndim
            shape[dim] = -1
            m = m * keep.view(shape).to(m.device)
        masks[name] = m
    return masks


def apply_weight_masks(parent: Parent, masks: dict[str, torch.Tensor]) -> Parent:
    """A copy of `parent` with masked tensors zeroed: the full-size masked sub-network.

    >>> from sparsenas.models import build_parent
    >>> from sparsenas.masks import NodeMask
    >>> p = build_parent("mlp", (1, 8, 8), 10, 0, (4,))
    >>> m = apply_weight_masks(p, weight_masks(p, NodeMask(((0, 1),))))
    >>> int((m.fc1.weight.abs().sum(1) > 0).sum())  # rows of the two removed nodes are zero
    2
    """
    masked = copy.deepcopy(parent)
    with torch.no_grad():
        for name, m in masks.items():
            t = masked.get_parameter(name) if name in dict(masked.named_parameters()) else masked.get_buffer(name)
            t.mul_(m.to(t.device))
    return masked


def expand(parent: Parent, mask: NodeMask, small: nn.Module) -> Parent:
    """The inverse of `compact`: a copy of `parent` holding `small`'s tensors at the kept nodes and
    zeros at the removed ones (the masked parent a trained compacted net stands for).

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 8, 8), 10, 0, (4,)); m = NodeMask(((1, 3),))
    >>> full = expand(p, m, compact(p, m)); x = torch.randn(2, 1, 8, 8)
    >>> bool(torch.allclose(full(x), compact(p, m)(x), atol=1e-6))
    True
    """
    groups = parent.node_groups()
    mask.validate(groups)
    full = copy.deepcopy(parent)
    state = dict(full.named_parameters()) | dict(full.named_buffers())
    small_state = dict(small.named_parameters()) | dict(small.named_buffers())
    plan = _index_plan(groups, mask, state)
    with torch.no_grad():
        for name, t in state.items():
            if name not in plan:
                t.copy_(small_state[name])
                continue
            # scatter along each cut dim in turn: index the zero target by the kept indices' grid
            target = torch.zeros_like(t)
            index = [torch.arange(n, device=t.device) for n in t.shape]
            for dim, idx in plan[name]:
                index[dim] = idx.to(t.device)
            target[torch.meshgrid(*index, indexing="ij")] = small_state[name].to(t.dtype)
            t.copy_(target)
    return full
