"""What a parent network must declare: its prunable node groups.

A *node* is one hidden unit of a Linear layer or one output channel of a Conv layer. A `NodeGroup`
says which tensors are indexed by the group's nodes: its *producers* (the rows of the weight and the
bias that compute the nodes, dim 0) and its *consumers* (the columns of the next layer that read them,
dim 1). A flatten between a conv and a linear layer makes each channel feed `block` consecutive
columns. With that declaration, masking and compaction work for any chain, without knowing the
architecture. The classifier layer's outputs are never a node group.

Models import nothing from training (nanoGPT's model.py): a model file is a constructor plus an
`nn.Module` that declares its node groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, vmap

from ..errors import SparsenasError


@dataclass(frozen=True)
class TensorSlice:
    """`tensor` (a parameter or buffer name) is indexed by the group's nodes along `dim`; node i owns
    indices [i*block, (i+1)*block)."""

    tensor: str
    dim: int
    block: int = 1


@dataclass(frozen=True)
class NodeGroup:
    name: str
    size: int
    producers: tuple[TensorSlice, ...]
    consumers: tuple[TensorSlice, ...]


class Parent(nn.Module):
    """Base class of parent networks: an `nn.Module` that lists its prunable node groups."""

    def node_groups(self) -> list[NodeGroup]:
        raise NotImplementedError(f"{type(self).__name__} must declare its node groups")

    def prunable_weights(self) -> list[str]:
        """Names of the weight tensors of every Linear and Conv layer (the classifier included:
        its columns go when the last hidden nodes go). Biases are not counted as prunable."""
        return [f"{n}.weight" for n, m in self.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]

    def stacked_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, classes) of K networks shaped like this one, on one shared batch x (B, ...).

        `params[name]` stacks the K networks' tensors along a new dim 0. This default vmaps the
        module's own `forward` (torch.func), so any parent trains as a population; a parent may
        override it with a faster formulation, as `MLP` does. The module's own tensors are not read.

        >>> from sparsenas.models import build_parent
        >>> m = build_parent("lenet5", (1, 28, 28), 10, seed=0)
        >>> p = {n: t.detach().expand(2, *t.shape) for n, t in m.named_parameters()}
        >>> y = m.stacked_forward(p, torch.zeros(4, 1, 28, 28)); tuple(y.shape)
        (2, 4, 10)
        """
        return vmapped_forward(self)(params, x)


def vmapped_forward(module: nn.Module) -> Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]:
    """`module`'s own forward vmapped over stacked tensors: (params (K, ...), x (B, ...)) -> (K, B, ...).

    The one population forward for any module; `Parent.stacked_forward` uses it by default.

    >>> f = vmapped_forward(nn.Linear(4, 3))
    >>> tuple(f({"weight": torch.zeros(2, 3, 4), "bias": torch.ones(2, 3)}, torch.zeros(5, 4)).shape)
    (2, 5, 3)
    """
    def one(p: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
        return functional_call(module, p, (xb,))

    # randomness="different": dropout draws its own mask per member, as each would alone
    return vmap(one, in_dims=(0, None), randomness="different")


def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Linear/Conv initialization, drawn from `generator` rather than global state.

    Kaiming-uniform weights with a=sqrt(5) and uniform(+-1/sqrt(fan_in)) biases, exactly as
    `nn.Linear.reset_parameters`, so parents look like any PyTorch model at init.

    >>> a, b = nn.Linear(4, 2), nn.Linear(4, 2)
    >>> init_parameters(a, torch.Generator().manual_seed(0)); init_parameters(b, torch.Generator().manual_seed(0))
    >>> bool(torch.equal(a.weight, b.weight))
    True
    """
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)


def linear_chain_groups(names: list[str], widths: list[int], consumer_blocks: list[int] | None = None) -> list[NodeGroup]:
    """Node groups of a chain of layers `names` whose hidden widths are `widths`.

    Layer i produces group i; layer i+1 consumes it. `names` has one more entry than `widths` (the
    classifier). `consumer_blocks[i]` is the flatten block size between layer i and i+1.

    >>> g = linear_chain_groups(["fc1", "out"], [300])
    >>> g[0].size, [s.tensor for s in g[0].producers], g[0].consumers[0].tensor
    (300, ['fc1.weight', 'fc1.bias'], 'out.weight')
    """
    blocks = consumer_blocks or [1] * len(widths)
    return [
        NodeGroup(
            name=names[i],
            size=w,
            producers=(TensorSlice(f"{names[i]}.weight", 0), TensorSlice(f"{names[i]}.bias", 0)),
            consumers=(TensorSlice(f"{names[i + 1]}.weight", 1, blocks[i]),),
        )
        for i, w in enumerate(widths)
    ]


def stacked_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """K linear layers at once: x (B, in) shared by all K, or (K, B, in); weight (K, out, in).

    A shared input is one GEMM against the K weight matrices laid side by side, (B, in) x (in, K*out),
    which runs near torch.mm's peak; per-member inputs use a batched GEMM. Returns (K, B, out).

    >>> x, w, b = torch.randn(5, 4), torch.randn(3, 2, 4), torch.randn(3, 2)
    >>> y = stacked_linear(x, w, b); tuple(y.shape)
    (3, 5, 2)
    >>> bool(torch.allclose(y[1], nn.functional.linear(x, w[1], b[1])))
    True
    """
    k, out, inp = weight.shape
    if x.dim() == 2:
        flat = weight.reshape(k * out, inp).t()
        y = torch.addmm(bias.reshape(-1), x, flat) if bias is not None else x @ flat
        return y.view(x.shape[0], k, out).transpose(0, 1)
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def _failing_module(model: nn.Module, x: torch.Tensor) -> tuple[str, Exception] | None:
    """(name of the innermost module whose forward raised, the error) for a train- and an eval-mode
    forward of `model` (a throwaway copy: train mode updates BatchNorm statistics), or None."""
    entered: list[str] = []  # modules whose forward began and has not returned: the last one raised

    def enter(name: str) -> Callable[[nn.Module, tuple[object, ...]], None]:
        return lambda _m, _args: entered.append(name)

    def leave(_m: nn.Module, _args: tuple[object, ...], _out: object) -> None:
        entered.pop()  # returns nothing: a forward hook's return value would replace the module's output

    handles = [h for n, m in model.named_modules() for h in (m.register_forward_pre_hook(enter(n)), m.register_forward_hook(leave))]
    try:
        # fork_rng: a dropout draw here must not shift the global stream a run's trials may read
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for train in (True, False):
                entered.clear()
                model.train(train)
                model(x)
    except (RuntimeError, ValueError, IndexError) as e:  # torch reports shape mismatches as these
        return entered[-1] if entered else "", e
    finally:
        for h in handles:
            h.remove()
    return None


def check_node_groups(parent: Parent, input_shape: tuple[int, ...], model: str) -> None:
    """Refuse, in one line, node groups that leave out a tensor their nodes index.

    Hand-declared groups that forget a tensor (a BatchNorm's running_mean, say) build fine and then
    fail mid-run, when a compacted copy meets the uncut tensor. A static rule ("every tensor of the
    group's width that follows its layer") needs the data flow and misfires on unrelated tensors of
    equal width, so this runs what training will run instead: each slice must fit its tensor, then a
    copy compacted to about half of every group (by `compact` itself) must run forward in train and
    eval mode on 2 zero inputs; a failure is traced to its group and to the tensors left out.

    >>> from sparsenas.models import build_parent
    >>> check_node_groups(build_parent("lenet5", (1, 28, 28), 10, seed=0), (1, 28, 28), "lenet5")
    """
    # imported here: masks imports this module, and the check must use the very compaction runs use
    from ..masks.compact import compact
    from ..masks.node import NodeMask

    groups = parent.node_groups()
    tensors = dict(parent.named_parameters()) | dict(parent.named_buffers())
    for g in groups:
        for sl in (*g.producers, *g.consumers):
            t = tensors.get(sl.tensor)
            if t is None:
                raise SparsenasError(
                    f"group '{g.name}' of model '{model}' names {sl.tensor}, which the model does not have; name one of its parameters or buffers"
                )
            if not 0 <= sl.dim < t.ndim or t.shape[sl.dim] != g.size * sl.block:
                raise SparsenasError(
                    f"group '{g.name}' of model '{model}' slices {sl.tensor} {tuple(t.shape)} along dim {sl.dim} in {g.size} "
                    f"blocks of {sl.block}; that dim must have {g.size * sl.block} entries: fix the group's size, dim or block"
                )
    # kept nodes: the first ceil(size/2) when cut (a 1-node group stays whole), every node otherwise
    half = lambda grp, cut: tuple(range(grp.size - grp.size // 2 if cut else grp.size))  # noqa: E731
    x = torch.zeros(2, *input_shape)  # (2, ...): train-mode BatchNorm needs more than one value per channel
    every = _failing_module(compact(parent, NodeMask(tuple(half(g, True) for g in groups))), x)
    if every is None:
        return
    if _failing_module(compact(parent, NodeMask(tuple(half(g, False) for g in groups))), x) is not None:
        return  # the uncut network fails too: not the groups' fault, and training will report it
    for g in groups:  # cut one group at a time, so the error is traced to its group
        failure = _failing_module(compact(parent, NodeMask(tuple(half(h, h is g) for h in groups))), x)
        if failure is not None:
            raise SparsenasError(_left_out(parent, groups, g, model, *failure))
    raise SparsenasError(
        f"model '{model}': each node group compacts on its own, but cutting all of them breaks the forward of "
        f"'{every[0] or type(parent).__name__}' ({_first_line(every[1])}); list every tensor indexed by each group's nodes"
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _left_out(parent: Parent, groups: list[NodeGroup], g: NodeGroup, model: str, where: str, error: Exception) -> str:
    """The message for group `g`, whose compaction alone makes module `where` fail with `error`."""
    # a (tensor, dim) any group cuts is spoken for: fc2.weight's rows belong to fc2 even where fc2 is as wide as fc1
    sliced = {(sl.tensor, sl.dim) for h in groups for sl in (*h.producers, *h.consumers)}
    module = parent.get_submodule(where)
    own = [(f"{where}.{n}" if where else n, t) for n, t in (*module.named_parameters(recurse=False), *module.named_buffers(recurse=False))]
    # the failing module's tensors with a dim as long as the group (or a multiple: a flatten's blocks) that the group does not cut
    missing = [(n, d, t.shape[d]) for n, t in own for d in range(t.ndim) if (n, d) not in sliced and t.shape[d] % g.size == 0 and t.shape[d] >= g.size]
    exact = [m for m in missing if m[2] == g.size]
    missing = exact or missing
    listed = ", ".join(dict.fromkeys(sl.tensor for sl in (*g.producers, *g.consumers)))
    if not missing:
        return (
            f"group '{g.name}' of model '{model}' slices {listed}, but cutting its nodes breaks the forward of "
            f"'{where or type(parent).__name__}' ({_first_line(error)}); list every tensor indexed by its nodes, and let forward read widths from its layers"
        )
    first, d, size = missing[0]
    names = ", ".join(n for n, dim, k in missing if (dim, k) == (d, size))
    block = f", {size // g.size}" if size != g.size else ""
    role = "producers" if d == 0 else "consumers"  # the convention: producers cut rows, consumers columns
    also = " and the like" if "," in names else ""
    return (
        f"group '{g.name}' of model '{model}' slices {listed} but not {names} ({size} entries along dim {d}); "
        f"add TensorSlice('{first}', {d}{block}){also} to the group's {role}"
    )
