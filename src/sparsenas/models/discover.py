"""Node groups found automatically: ResNets, VGGs and plain chains of Linear / Conv2d layers.

`discover_node_groups` traces a module with torch.fx, runs the traced graph once on a zero batch to
learn every intermediate shape, and follows the data from the input to the output. Every Linear or
Conv2d output starts a *node space* (its units or channels). Ops that act on every node separately
(activations, dropout, 2-d pooling, a channel-major flatten) carry a space along unchanged; the
ones that tie nodes of two tensors together tie their spaces:

- an elementwise op on two tensors (a residual `out += shortcut(x)`, a gate `a * b`) makes both
  spaces one: node i of each is kept or dropped together. A ResNet stage's stem conv, every block's
  second conv and its projection shortcut write into one residual stream, so they become one group;
- a depthwise conv (groups = in = out channels) reads channel i into channel i: its filters follow
  the nodes of its input, which stay one group (a grouped conv with fewer groups is refused);
- BatchNorm (1d or 2d) is indexed by the nodes of the tensor it normalizes: its weight, bias,
  running mean and running variance join that space's producers;
- a channel concatenation lays several spaces side by side: the layer reading it takes each
  space's columns at that space's offset.

A space that reaches the model's input (pixels cannot be pruned) or its output (the logits) is not a
group. Every other space is one `NodeGroup`: its producers are the rows of every layer and
BatchNorm writing into it, its consumers the columns of every layer reading it, and it is named by
its first producer. Anything whose effect on nodes discovery cannot state (a LayerNorm, a grouped
convolution other than a depthwise one, a reshape that mixes channels, a tensor of the model's own added to a layer's output)
is refused with one line naming the layer rather than guessed.

`autoparent.as_parent` turns a plain `nn.Module` into a `Parent` in place, with discovery as its
`node_groups()`; `build_parent` applies it to any registered constructor that returns a plain module.

The torch.fx mechanics (tracing, the shape run, naming a node in an error) live in `tracing.py`,
the ops a node passes through in `chain_ops.py`; this file follows the data and builds the groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import SparsenasError
from .base import NodeGroup, TensorSlice
from .chain_ops import (
    BINARY_FUNCTIONS,
    BINARY_METHODS,
    CAT_FUNCTIONS,
    ELEMENTWISE_FUNCTIONS,
    ELEMENTWISE_METHODS,
    ELEMENTWISE_MODULES,
    META_ATTRS,
    META_METHODS,
    POOL_FUNCTIONS,
    POOL_MODULES,
    RESHAPE_FUNCTIONS,
    RESHAPE_METHODS,
    SUPPORTED,
)
from .tracing import HOW_TO, _check_input_shape, _describe, _fail, _propagate, _trace

_INPUT, _OUTPUT = "the model's input", "the model's output"


@dataclass(frozen=True)
class _Layout:
    """Where nodes sit in one tensor. `channels`: (B, C, H, W) with the nodes along dim 1;
    otherwise the nodes run along the last dim, each owning `block` consecutive entries. `segments`
    lists (space, nodes) in order along that dim: one segment, or several after a concatenation."""

    shape: tuple[int, ...]
    channels: bool
    segments: tuple[tuple[int, int], ...]
    block: int = 1


@dataclass
class _Space:
    """One layer's nodes, and everything indexed by them (merged when spaces are tied)."""

    size: int
    name: str  # the layer that made it
    order: int  # that layer's position in the graph: groups come in graph order
    fixed: str = ""  # why its nodes cannot be pruned (they are the input's or the output's), or ""
    # (graph position, slice): sorted by position when the group is built
    producers: list[tuple[int, TensorSlice]] = field(default_factory=list)
    consumers: list[tuple[int, TensorSlice]] = field(default_factory=list)


class _Spaces:
    """Node spaces with union-find: tying two spaces merges them into one future group."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.spaces: list[_Space] = []

    def new(self, size: int, name: str, order: int, fixed: str = "") -> int:
        self.parent.append(len(self.parent))
        self.spaces.append(_Space(size, name, order, fixed))
        return len(self.parent) - 1

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def get(self, i: int) -> _Space:
        return self.spaces[self.root(i)]

    def tie(self, a: int, b: int) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return
        first, second = (ra, rb) if self.spaces[ra].order <= self.spaces[rb].order else (rb, ra)
        keep, gone = self.spaces[first], self.spaces[second]
        keep.fixed = keep.fixed or gone.fixed
        keep.producers += gone.producers
        keep.consumers += gone.consumers
        self.parent[second] = first


def _check_module_types(module: nn.Module) -> None:
    """Refuse, before running anything, the layers whose tensors discovery could not slice."""
    for name, m in module.named_modules():
        label = f"layer '{name or '<root>'}' ({type(m).__name__})"
        if isinstance(m, nn.Conv2d):
            if m.groups != 1 and not _depthwise(m):
                raise _fail(
                    f"{label} is a grouped convolution (groups={m.groups}), whose channels can only be pruned in equal "
                    f"numbers per group; use groups=1, a depthwise conv (groups = in = out channels) or {HOW_TO}"
                )
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if not m.track_running_stats:
                raise _fail(
                    f"{label} keeps no running statistics (track_running_stats=False), so it cannot evaluate a batch of one "
                    f"or a sub-network alone; use track_running_stats=True or {HOW_TO}"
                )
            continue
        if isinstance(m, nn.Linear):
            continue
        if isinstance(m, nn.PReLU) and m.weight.numel() == 1:
            continue
        own = [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]
        # a torch.nn layer with tensors of its own (LayerNorm, GroupNorm, Embedding, Conv1d, LSTM, ...)
        # mixes nodes or is not a layer discovery slices; user modules' own tensors are judged in the graph
        if own and type(m).__module__.startswith("torch."):
            raise _fail(
                f"{label} is not supported: discovery handles Linear, Conv2d (groups=1) and BatchNorm layers joined by "
                f"{SUPPORTED}; {HOW_TO}"
            )


def _depthwise(m: nn.Conv2d) -> bool:
    """One filter per channel (MobileNet's depthwise conv): output channel i reads input channel i only."""
    # a depthwise conv compacted to one channel has groups=1; compaction marks it so it stays one
    return (m.groups > 1 or getattr(m, "sparsenas_depthwise", False)) and m.groups == m.in_channels == m.out_channels


def _is_meta_query(n: fx.Node) -> bool:
    if n.op == "call_method":
        return n.target in META_METHODS
    if n.op == "call_function":
        return (n.target is getattr and len(n.args) > 1 and n.args[1] in META_ATTRS) or n.target in (len, torch.numel)
    return False


def _in_place(n: fx.Node) -> bool:
    """`x.relu_()`, `out.add_(y)`: the result is `x` itself, which later ops read under its old name."""
    return n.op == "call_method" and str(n.target).endswith("_") and not str(n.target).endswith("__")


def _unary_kind(u: fx.Node, module: nn.Module | None) -> str | None:
    """'elementwise', 'pool' or 'reshape' for an op a node passes through alone, else None."""
    if u.op == "call_module":
        if isinstance(module, ELEMENTWISE_MODULES) or (isinstance(module, nn.PReLU) and module.weight.numel() == 1):
            return "elementwise"
        if isinstance(module, POOL_MODULES) and not getattr(module, "return_indices", False):
            return "pool"
        if isinstance(module, nn.Flatten):
            return "reshape"
        return None
    if u.op == "call_function":
        if u.target in ELEMENTWISE_FUNCTIONS:
            return "elementwise"
        if u.target in POOL_FUNCTIONS:
            return "pool"
        return "reshape" if u.target in RESHAPE_FUNCTIONS else None
    if u.op == "call_method":
        return "elementwise" if u.target in ELEMENTWISE_METHODS else "reshape" if u.target in RESHAPE_METHODS else None
    return None


def _step(kind: str, lay: _Layout, out: tuple[int, ...], label: str) -> _Layout:
    """The layout after a unary op of `kind` that turns shape `lay.shape` into `out`."""
    if out == lay.shape:  # any of them that keeps the shape keeps every node where it was
        return lay
    if kind == "pool" and lay.channels and len(out) == 4 and out[:2] == lay.shape[:2]:
        return _Layout(out, True, lay.segments)
    if kind == "reshape" and lay.channels and len(out) == 2 and out[0] == lay.shape[0]:
        if out[1] == math.prod(lay.shape[1:]):
            # row-major (B, C, H, W) -> (B, C*H*W): channel c owns columns [c*H*W, (c+1)*H*W)
            return _Layout(out, False, lay.segments, block=math.prod(lay.shape[2:]))
    if kind == "reshape" and not lay.channels and lay.block == 1 and len(lay.shape) == 2 and out == (*lay.shape, 1, 1):
        return _Layout(out, True, lay.segments)  # (B, C) -> (B, C, 1, 1): a gate's view back to channels
    if kind == "reshape" and not lay.channels and out[-1] == lay.shape[-1] and math.prod(out) == math.prod(lay.shape):
        return _Layout(out, False, lay.segments, lay.block)  # only leading (batch) dims move
    raise _fail(
        f"{label} turns shape {lay.shape} into {out}, "
        f"which mixes nodes: only a channel-major flatten (B, C, H, W) -> (B, C*H*W) and pooling that keeps the "
        f"channels are supported; {HOW_TO}"
    )


def _spatial_reduction(n: fx.Node, lay: _Layout) -> bool:
    """`x.mean((2, 3))`, `torch.amax(x, dim=(-2, -1), keepdim=True)`: a reduction over H and W only."""
    if not (lay.channels and len(lay.shape) == 4):
        return False
    if n.op == "call_method" and n.target in ("mean", "sum", "amax"):
        dims = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
    elif n.op == "call_function" and n.target in (torch.mean, torch.sum, torch.amax):
        dims = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
    else:
        return False
    return isinstance(dims, (list, tuple)) and all(isinstance(d, int) for d in dims) and sorted(d % 4 for d in dims) == [2, 3]


def _node_axis(lay: _Layout) -> int:
    return 1 if lay.channels else len(lay.shape) - 1


def _name(n: fx.Node) -> str:
    return str(n.target) if n.op in ("call_module", "get_attr") else n.name


class _Discovery:
    """One pass over the traced graph in order, giving every tensor its `_Layout`."""

    def __init__(self, module: nn.Module, gm: fx.GraphModule, shapes: dict[fx.Node, tuple[int, ...] | None]) -> None:
        self.module = module
        self.shapes = shapes
        self.modules = dict(gm.named_modules())
        self.nodes = list(gm.graph.nodes)
        self.position = {n: i for i, n in enumerate(self.nodes)}
        self.spaces = _Spaces()
        self.layouts: dict[fx.Node, _Layout] = {}
        self.layers = [n for n in self.nodes if n.op == "call_module" and isinstance(self.modules[str(n.target)], (nn.Linear, nn.Conv2d))]
        self.is_layer = is_layer = set(self.layers)
        # which nodes still lead to a prunable layer: past the classifier anything goes (softmax, squeeze...)
        self.leads: dict[fx.Node, bool] = {}
        for n in reversed(self.nodes):
            self.leads[n] = any(u in is_layer or self.leads[u] for u in n.users if not _is_meta_query(u))

    def describe(self, n: fx.Node) -> str:
        return _describe(n, self.modules)

    def slices(self, lay: _Layout, n: fx.Node, tensor: str, dim: int, role: str) -> None:
        """Record that `tensor` is indexed along `dim` by the nodes of every segment of `lay`."""
        offset = 0
        for space, count in lay.segments:
            sl = TensorSlice(tensor, dim, lay.block, offset * lay.block)
            getattr(self.spaces.get(space), role).append((self.position[n], sl))
            offset += count

    def fix(self, lay: _Layout, why: str) -> None:
        for space, _ in lay.segments:
            s = self.spaces.get(space)
            s.fixed = s.fixed or why

    def flows(self, n: fx.Node) -> list[fx.Node]:
        return [a for a in n.all_input_nodes if a in self.layouts]

    def run(self) -> None:
        for n in self.nodes:
            if n.op == "placeholder":
                shape = self.shapes.get(n)
                if shape is not None and len(shape) >= 2:
                    channels = len(shape) == 4
                    size = shape[1] if channels else shape[-1]
                    space = self.spaces.new(size, "input", self.position[n], fixed=_INPUT)
                    self.layouts[n] = _Layout(shape, channels, ((space, size),))
                continue
            if _is_meta_query(n):
                continue  # x.size(0) reads the shape, not the nodes' values
            if n.op == "output":
                for a in self.flows(n):
                    self.fix(self.layouts[a], _OUTPUT)
                continue
            flows = self.flows(n)
            if not flows:
                continue
            if _in_place(n):
                # x.relu_(), out.add_(y): later ops read x itself, so what matters is whether x leads on
                target = n.args[0] if n.args else None
                if not (isinstance(target, fx.Node) and self.leads[target]):
                    continue  # it changes values past the last layer only (logits.clamp_(...))
            elif not n.users and n not in self.is_layer:
                continue  # a result nobody reads: dead code, or F.relu(x, inplace=True) left unassigned
            elif not (self.leads[n] or n in self.is_layer):
                for a in flows:  # past the last layer: whatever it computes, these nodes reach the output
                    self.fix(self.layouts[a], _OUTPUT)
                continue
            out = self.layout_after(n, flows)
            if out is not None:
                self.layouts[n] = out

    def layout_after(self, n: fx.Node, flows: list[fx.Node]) -> _Layout | None:
        module = self.modules.get(str(n.target)) if n.op == "call_module" else None
        first = self.layouts[flows[0]]
        shape = self.shapes.get(n)
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            return self.layer(n, module, first)
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.batchnorm(n, module, first)
        if n.op == "call_function" and n.target in CAT_FUNCTIONS:
            return self.cat(n, flows)
        others = [a for a in n.all_input_nodes if a not in self.layouts and self.shapes.get(a) is not None]
        binary = (n.op == "call_function" and n.target in BINARY_FUNCTIONS) or (n.op == "call_method" and n.target in BINARY_METHODS)
        if binary and len(flows) == 2 and not others:
            return self.tie(n, flows)
        if len(flows) > 1 or others:
            other = flows[1] if len(flows) > 1 else others[0]
            raise _fail(
                f"{self.describe(n)} combines the output of '{_name(flows[0])}' with '{_name(other)}' in a way discovery "
                f"cannot follow (only elementwise add/sub/mul of equal shapes and channel concatenation are); {HOW_TO}"
            )
        kind = _unary_kind(n, module)
        label = f"{self.describe(n)} after {_origin(self, first)}"
        if kind is None and shape is not None and _spatial_reduction(n, first):
            # x.mean((2, 3)): global pooling, one value per channel
            return _Layout(shape, len(shape) == 4, first.segments)
        if kind is None or shape is None:
            raise _fail(f"{label} is not supported between prunable layers (only {SUPPORTED} are); {HOW_TO}")
        return _step(kind, first, shape, label)

    def layer(self, n: fx.Node, m: nn.Linear | nn.Conv2d, lay: _Layout) -> _Layout:
        if isinstance(m, nn.Linear) and lay.channels:
            raise _fail(
                f"{self.describe(n)} reads the channels of {_origin(self, lay)} unflattened (shape {lay.shape}); flatten to (B, C*H*W) first or {HOW_TO}"
            )
        if isinstance(m, nn.Conv2d) and not lay.channels:
            raise _fail(
                f"{self.describe(n)} reads the flattened features of {_origin(self, lay)}; only conv -> conv, "
                f"conv -> flatten -> linear and linear -> linear are supported; {HOW_TO}"
            )
        name = str(n.target)
        if isinstance(m, nn.Conv2d) and _depthwise(m):
            # channel i in, channel i out: the output holds the input's nodes, and the conv's filter i
            # (its rows) and bias follow them like a BatchNorm's tensors; its dim 1 is 1, never cut
            shape = self.shapes[n]
            assert shape is not None
            out = _Layout(shape, True, lay.segments)
            self.slices(out, n, f"{name}.weight", 0, "producers")
            if m.bias is not None:
                self.slices(out, n, f"{name}.bias", 0, "producers")
            return out
        self.slices(lay, n, f"{name}.weight", 1, "consumers")
        shape = self.shapes[n]
        assert shape is not None  # a Linear/Conv2d returns a tensor
        size = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
        space = self.spaces.new(size, name, self.position[n])
        made = _Layout(shape, isinstance(m, nn.Conv2d), ((space, size),))
        self.slices(made, n, f"{name}.weight", 0, "producers")
        if m.bias is not None:
            self.slices(made, n, f"{name}.bias", 0, "producers")
        return made

    def batchnorm(self, n: fx.Node, m: nn.BatchNorm1d | nn.BatchNorm2d, lay: _Layout) -> _Layout:
        # BatchNorm1d on (B, C) and BatchNorm2d on (B, C, H, W) normalize each node alone; BatchNorm1d
        # on (B, C, L) runs along dim 1, which is no node axis here
        if not (lay.channels or len(lay.shape) == 2):
            raise _fail(f"{self.describe(n)} normalizes dim 1 of shape {lay.shape}, whose nodes run along the last dim; {HOW_TO}")
        name = str(n.target)
        for attr in ("weight", "bias", "running_mean", "running_var"):
            if getattr(m, attr, None) is not None:
                self.slices(lay, n, f"{name}.{attr}", 0, "producers")
        return lay

    def tie(self, n: fx.Node, flows: list[fx.Node]) -> _Layout:
        a, b = self.layouts[flows[0]], self.layouts[flows[1]]
        shape = self.shapes.get(n)
        same = a.shape == b.shape == shape
        # a channel gate (squeeze-and-excitation): (B, C, H, W) * (B, C, 1, 1) scales channel i by gate i
        gate = (
            a.channels
            and b.channels
            and shape is not None
            and a.shape[:2] == b.shape[:2] == shape[:2]
            and (a.shape[2:] == (1, 1) or b.shape[2:] == (1, 1))
            and shape in (a.shape, b.shape)
        )
        if not (same or gate) or a.channels != b.channels or a.block != b.block:
            raise _fail(
                f"{self.describe(n)} combines '{_name(flows[0])}' {a.shape} with '{_name(flows[1])}' {b.shape}: only tensors of "
                f"one shape can be tied node by node (no broadcasting); {HOW_TO}"
            )
        if [c for _, c in a.segments] != [c for _, c in b.segments]:
            raise _fail(
                f"{self.describe(n)} adds '{_name(flows[0])}' and '{_name(flows[1])}', whose channels come from differently "
                f"concatenated layers; {HOW_TO}"
            )
        for (sa, _), (sb, _) in zip(a.segments, b.segments):
            self.spaces.tie(sa, sb)
        return a if a.shape == shape else b

    def cat(self, n: fx.Node, flows: list[fx.Node]) -> _Layout:
        parts = n.args[0] if n.args else n.kwargs.get("tensors")
        dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
        if not isinstance(parts, (list, tuple)) or not all(isinstance(p, fx.Node) and p in self.layouts for p in parts):
            raise _fail(f"{self.describe(n)} concatenates a tensor that comes from no layer or input; {HOW_TO}")
        lays = [self.layouts[p] for p in parts]
        first, shape = lays[0], self.shapes.get(n)
        axis = _node_axis(first)
        if not isinstance(dim, int) or shape is None or dim % len(first.shape) != axis:
            raise _fail(
                f"{self.describe(n)} concatenates along dim {dim}; discovery follows concatenation along the node dim "
                f"({axis}: channels or features) only; {HOW_TO}"
            )
        if any(lay.channels != first.channels or lay.block != first.block for lay in lays):
            raise _fail(f"{self.describe(n)} concatenates tensors whose nodes are laid out differently; {HOW_TO}")
        return _Layout(shape, first.channels, tuple(s for lay in lays for s in lay.segments), first.block)

    def groups(self) -> list[NodeGroup]:
        roots = sorted({self.spaces.root(i) for i in range(len(self.spaces.parent))}, key=lambda r: self.spaces.spaces[r].order)
        out = []
        for r in roots:
            s = self.spaces.spaces[r]
            if s.fixed or not s.consumers:
                continue  # the input's or output's nodes, or a layer nothing reads
            ordered = lambda xs: tuple(dict.fromkeys(sl for _, sl in sorted(xs, key=lambda p: p[0])))  # noqa: E731
            out.append(NodeGroup(s.name, s.size, ordered(s.producers), ordered(s.consumers)))
        return out


def _origin(d: _Discovery, lay: _Layout) -> str:
    """Whose nodes `lay` holds, as a user reads it: "layer 'conv1'" or "the input"."""
    s = d.spaces.spaces[lay.segments[0][0]]  # the space as made, not its merged root: its own layer
    return "the input" if s.name == "input" and s.fixed == _INPUT else f"layer '{s.name}'"


def discover_node_groups(module: nn.Module, input_shape: tuple[int, ...]) -> list[NodeGroup]:
    """The node groups of `module`, found by tracing it with torch.fx (see the module docstring).

    Each group is named by the first layer (qualified module name) writing into it; the layer
    producing the output (the classifier) is not a group. `input_shape` is one sample's shape: shapes
    are propagated on a zero batch (2, *input_shape). Raises `SparsenasError` (one line naming the
    layer) on what discovery cannot describe.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    >>> [(g.name, g.size, [s.tensor for s in g.producers]) for g in discover_node_groups(net, (1, 8, 8))]
    [('0', 4, ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var'])]
    >>> discover_node_groups(nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2)), (4,))
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: cannot discover node groups: layer '1' (LayerNorm) is not supported: discovery handles Linear, Conv2d (groups=1) and BatchNorm layers joined by activations, dropout, 2-d pooling, a channel-major flatten, elementwise add/mul of layers' outputs and channel concatenation; declare node_groups() yourself (see examples/bring_your_own.py)
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
    d = _Discovery(module, gm, shapes)
    params = dict(module.named_parameters())
    seen: set[str] = set()
    for n in d.layers + [n for n in d.nodes if n.op == "call_module" and isinstance(d.modules[str(n.target)], _BatchNorm)]:
        if n.target in seen:
            raise _fail(f"{d.describe(n)} is called more than once in forward (shared weights); {HOW_TO}")
        seen.add(str(n.target))
        if isinstance(d.modules[str(n.target)], (nn.Linear, nn.Conv2d)) and f"{n.target}.weight" not in params:
            raise _fail(f"{d.describe(n)} shares its weight with another layer (tied weights); {HOW_TO}")
    if not d.layers:
        functional = [n for n in d.nodes if n.op == "call_function" and n.target in (F.linear, F.conv2d)]
        if functional:
            raise _fail(
                f"{type(module).__name__} computes {d.describe(functional[0])} from its own tensors; discovery "
                f"needs nn.Linear / nn.Conv2d submodules, so use those or {HOW_TO}"
            )
        raise _fail(
            f"{type(module).__name__} has no Linear or Conv2d layer, whose units and channels are what discovery "
            f"prunes; build it from nn.Linear / nn.Conv2d layers or {HOW_TO}"
        )
    if len(d.layers) == 1:
        raise _fail(
            f"{type(module).__name__} has a single Linear/Conv2d layer ('{d.layers[0].target}', the classifier) and no "
            "hidden layer to prune; add a hidden layer"
        )
    d.run()
    return d.groups()


def describe_node_groups(groups: list[NodeGroup]) -> list[str]:
    """One line per group: its nodes, the layers writing them (BatchNorms named apart) and the layers
    reading them. What a user checks discovery against.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    >>> describe_node_groups(discover_node_groups(net, (1, 8, 8)))
    ["group '0': 4 nodes; written by 0 (normalized by 1); read by 4"]
    """
    lines = []
    for g in groups:
        owner = lambda sl: sl.tensor.rpartition(".")[0] or sl.tensor  # noqa: E731
        writers = list(dict.fromkeys(owner(sl) for sl in g.producers))
        norms = {owner(sl) for sl in g.producers if sl.tensor.endswith((".running_mean", ".running_var"))}
        layers = [w for w in writers if w not in norms]
        bns = [w for w in writers if w in norms]
        readers = list(dict.fromkeys(owner(sl) for sl in g.consumers))
        normalized = f" (normalized by {', '.join(bns)})" if bns else ""
        lines.append(f"group '{g.name}': {g.size} nodes; written by {', '.join(layers)}{normalized}; read by {', '.join(readers)}")
    return lines
