"""Node groups found automatically: any plain chain of Linear / Conv2d layers becomes a parent.

`discover_node_groups` traces a module with torch.fx, runs the traced graph once on a zero batch to
learn every intermediate shape, and follows the data from each Linear or Conv2d output to the next
Linear or Conv2d. Between two such layers only ops that act on every node separately are allowed
(activations, dropout, 2-d pooling, a channel-major flatten), because then removing a node is
exactly removing its producer rows and its consumer columns, which is what a `NodeGroup` declares.
Anything else (a residual add, a normalization layer, a grouped conv, two consumers of one output)
couples nodes across tensors in ways a chain cannot express, so discovery refuses it with one line
naming the layer rather than guessing.

`autoparent.as_parent` turns a plain `nn.Module` into a `Parent` in place, with discovery as its
`node_groups()`; `build_parent` applies it to any registered constructor that returns a plain module.

The torch.fx mechanics (tracing, the shape run, naming a node in an error) live in `tracing.py`,
the ops a chain may contain in `chain_ops.py`; this file follows the data and builds the groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F

from ..errors import SparsenasError
from .base import NodeGroup, TensorSlice
from .chain_ops import (
    ELEMENTWISE_FUNCTIONS,
    ELEMENTWISE_METHODS,
    ELEMENTWISE_MODULES,
    META_ATTRS,
    META_METHODS,
    POOL_FUNCTIONS,
    POOL_MODULES,
    RESHAPE_FUNCTIONS,
    RESHAPE_METHODS,
    RESIDUAL,
    SUPPORTED,
)
from .tracing import HOW_TO, _check_input_shape, _describe, _fail, _propagate, _trace


@dataclass(frozen=True)
class _Flow:
    """How one layer's nodes sit in the tensor being followed: `channels` means (B, C, H, W) with the
    nodes along dim 1; otherwise the nodes run along the last dim, each owning `block` entries."""

    shape: tuple[int, ...]
    nodes: int
    channels: bool
    block: int = 1


def _check_module_types(module: nn.Module) -> None:
    """Refuse, before running anything, the layers whose tensors discovery could not slice."""
    for name, m in module.named_modules():
        label = f"layer '{name or '<root>'}' ({type(m).__name__})"
        if isinstance(m, nn.Conv2d):
            if m.groups != 1:
                raise _fail(
                    f"{label} is a grouped or depthwise convolution (groups={m.groups}), whose channels cannot be "
                    f"pruned one by one; use groups=1 or {HOW_TO}"
                )
            continue
        if isinstance(m, nn.Linear) or (isinstance(m, nn.PReLU) and m.weight.numel() == 1):
            continue
        own = [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]
        # a torch.nn layer with tensors of its own (BatchNorm, LayerNorm, Embedding, Conv1d, LSTM, ...)
        # has per-node state or is not a chain layer; user modules' own tensors are judged in the graph
        if own and type(m).__module__.startswith("torch."):
            raise _fail(f"{label} is not supported: discovery handles Linear and Conv2d (groups=1) layers joined by {SUPPORTED}; {HOW_TO}")


def _is_meta_query(n: fx.Node) -> bool:
    if n.op == "call_method":
        return n.target in META_METHODS
    if n.op == "call_function":
        return (n.target is getattr and len(n.args) > 1 and n.args[1] in META_ATTRS) or n.target in (len, torch.numel)
    return False


def _data_users(n: fx.Node) -> list[fx.Node]:
    return [u for u in n.users if not _is_meta_query(u)]


def _step(u: fx.Node, flow: _Flow, out: tuple[int, ...] | None, module: nn.Module | None, label: str) -> _Flow | None:
    """The layout after op `u`, or None when `u` is not an op a node passes through unchanged."""
    if out is None:
        return None
    kind = None
    if u.op == "call_module":
        if isinstance(module, ELEMENTWISE_MODULES) or (isinstance(module, nn.PReLU) and module.weight.numel() == 1):
            kind = "elementwise"
        elif isinstance(module, POOL_MODULES) and not getattr(module, "return_indices", False):
            kind = "pool"
        elif isinstance(module, nn.Flatten):
            kind = "reshape"
    elif u.op == "call_function":
        kind = (
            "elementwise"
            if u.target in ELEMENTWISE_FUNCTIONS
            else "pool"
            if u.target in POOL_FUNCTIONS
            else "reshape"
            if u.target in RESHAPE_FUNCTIONS
            else None
        )
    elif u.op == "call_method":
        kind = "elementwise" if u.target in ELEMENTWISE_METHODS else "reshape" if u.target in RESHAPE_METHODS else None
    if kind is None:
        return None
    if out == flow.shape:  # any of them that keeps the shape keeps every node where it was
        return flow
    if kind == "pool" and flow.channels and len(out) == 4 and out[:2] == flow.shape[:2]:
        return _Flow(out, flow.nodes, channels=True)
    if kind == "reshape" and flow.channels and len(out) == 2 and out[0] == flow.shape[0]:
        if out[1] == math.prod(flow.shape[1:]):
            # row-major (B, C, H, W) -> (B, C*H*W): channel c owns columns [c*H*W, (c+1)*H*W)
            return _Flow(out, flow.nodes, channels=False, block=math.prod(flow.shape[2:]))
    if kind == "reshape" and not flow.channels and out[-1] == flow.shape[-1] and math.prod(out) == math.prod(flow.shape):
        return _Flow(out, flow.nodes, channels=False, block=flow.block)  # only leading (batch) dims move
    raise _fail(
        f"{label} turns shape {flow.shape} into {out}, "
        f"which mixes nodes: only a channel-major flatten (B, C, H, W) -> (B, C*H*W) and pooling that keeps the "
        f"channels are supported; {HOW_TO}"
    )


def discover_node_groups(module: nn.Module, input_shape: tuple[int, ...]) -> list[NodeGroup]:
    """The node groups of a chain of Linear / Conv2d layers, found by tracing `module` with torch.fx.

    Each hidden Linear's units and each hidden Conv2d's output channels are one group, named by the
    layer's qualified module name; the layer producing the output (the classifier) is not a group.
    `input_shape` is one sample's shape: shapes are propagated on a zero batch (2, *input_shape).
    Raises `SparsenasError` (one line naming the layer) on what a chain cannot describe.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 8), nn.GELU(), nn.Linear(8, 2))
    >>> [(g.name, g.size, g.consumers[0]) for g in discover_node_groups(net, (1, 8, 8))]
    [('0', 4, TensorSlice(tensor='4.weight', dim=1, block=9)), ('4', 8, TensorSlice(tensor='6.weight', dim=1, block=1))]
    >>> discover_node_groups(nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2)), (4,))
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: cannot discover node groups: layer '1' (LayerNorm) is not supported: discovery handles Linear and Conv2d (groups=1) layers joined by activations, dropout, 2-d pooling and a channel-major flatten; declare node_groups() yourself (see examples/bring_your_own.py)
    """
    if not isinstance(module, nn.Module):
        raise SparsenasError(f"discovery needs an nn.Module, got {type(module).__name__}")
    input_shape = _check_input_shape(input_shape)
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        raise _fail(
            f"the model is a single {type(module).__name__} layer (the classifier) with no hidden layer to prune; add a hidden layer"
        )
    _check_module_types(module)
    gm = _trace(module)
    shapes = _propagate(gm, module, input_shape)
    modules = dict(gm.named_modules())
    params = dict(module.named_parameters())
    nodes = list(gm.graph.nodes)

    layers = [n for n in nodes if n.op == "call_module" and isinstance(modules[str(n.target)], (nn.Linear, nn.Conv2d))]
    seen: set[str] = set()
    for n in layers:
        if n.target in seen:
            raise _fail(f"{_describe(n, modules)} is called more than once in forward (shared weights); {HOW_TO}")
        seen.add(str(n.target))
        if f"{n.target}.weight" not in params:
            raise _fail(f"{_describe(n, modules)} shares its weight with another layer (tied weights); {HOW_TO}")
    if not layers:
        functional = [n for n in nodes if n.op == "call_function" and n.target in (F.linear, F.conv2d)]
        if functional:
            raise _fail(
                f"{type(module).__name__} computes {_describe(functional[0], modules)} from its own tensors; discovery "
                f"needs nn.Linear / nn.Conv2d submodules, so use those or {HOW_TO}"
            )
        raise _fail(
            f"{type(module).__name__} has no Linear or Conv2d layer, whose units and channels are what discovery "
            f"prunes; build it from nn.Linear / nn.Conv2d layers or {HOW_TO}"
        )
    if len(layers) == 1:
        raise _fail(
            f"{type(module).__name__} has a single Linear/Conv2d layer ('{layers[0].target}', the classifier) and no "
            "hidden layer to prune; add a hidden layer"
        )
    is_layer = set(layers)

    # which nodes still lead to a prunable layer: past the classifier anything goes (softmax, squeeze...)
    leads: dict[fx.Node, bool] = {}
    for n in reversed(nodes):
        leads[n] = any(u in is_layer or leads[u] for u in _data_users(n))

    consumer_of: dict[fx.Node, tuple[fx.Node, _Flow]] = {}
    ends: list[fx.Node] = []
    for layer in layers:
        m = modules[str(layer.target)]
        out = shapes[layer]
        assert out is not None  # a Linear/Conv2d returns a tensor
        if isinstance(m, nn.Conv2d):
            flow = _Flow(out, m.out_channels, channels=True)
        else:
            flow = _Flow(out, m.out_features, channels=False)
        cur = layer
        while True:
            if not leads[cur]:
                ends.append(layer)
                break
            users = _data_users(cur)
            if len(users) != 1:
                names = ", ".join(f"'{u.target if u.op == 'call_module' else u.name}'" for u in users)
                raise _fail(f"the output of layer '{layer.target}' feeds {len(users)} ops ({names}); {RESIDUAL}")
            u = users[0]
            others = [a for a in u.all_input_nodes if a is not cur and (a.op == "get_attr" or shapes.get(a) is not None)]
            if others:
                raise _fail(
                    f"{_describe(u, modules)} combines the output of layer '{layer.target}' with another tensor "
                    f"('{others[0].target if others[0].op != 'call_function' else others[0].name}'), e.g. a residual "
                    f"connection; {RESIDUAL}"
                )
            if u in is_layer:
                nxt = modules[str(u.target)]
                if isinstance(nxt, nn.Linear) and flow.channels:
                    raise _fail(
                        f"{_describe(u, modules)} reads the channels of layer '{layer.target}' unflattened "
                        f"(shape {flow.shape}); flatten to (B, C*H*W) first or {HOW_TO}"
                    )
                if isinstance(nxt, nn.Conv2d) and not flow.channels:
                    raise _fail(
                        f"{_describe(u, modules)} reads the flattened features of layer '{layer.target}'; "
                        f"only conv -> conv, conv -> flatten -> linear and linear -> linear chains are supported; {HOW_TO}"
                    )
                consumer_of[layer] = (u, flow)
                break
            module_u = modules.get(str(u.target)) if u.op == "call_module" else None
            nxt_flow = _step(u, flow, shapes.get(u), module_u, f"{_describe(u, modules)} after layer '{layer.target}'")
            if nxt_flow is None:
                raise _fail(
                    f"{_describe(u, modules)} after layer '{layer.target}' is not supported between prunable layers "
                    f"(only {SUPPORTED} are); {HOW_TO}"
                )
            flow, cur = nxt_flow, u

    if len(ends) != 1:
        raise _fail(
            f"layers {', '.join(repr(str(e.target)) for e in ends)} each end a chain, but only the classifier may: "
            f"discovery supports one chain input -> hidden layers -> classifier; {HOW_TO}"
        )
    # chain order: from the layer nobody feeds, along consumer_of
    fed = {c for c, _ in consumer_of.values()}
    layer = next(n for n in layers if n not in fed)
    groups: list[NodeGroup] = []
    while layer in consumer_of:
        nxt, flow = consumer_of[layer]
        name = str(layer.target)
        m = modules[name]
        producers = (TensorSlice(f"{name}.weight", 0),) + ((TensorSlice(f"{name}.bias", 0),) if m.bias is not None else ())
        groups.append(NodeGroup(name, flow.nodes, producers, (TensorSlice(f"{nxt.target}.weight", 1, flow.block),)))
        layer = nxt
    return groups
