"""Checking a parent's hand-declared node groups by compacting it, before anything trains.

Lives with compaction rather than with the models: the check runs `compact` itself (the very code a
run uses), and the models layer sits below masks. The protocol calls it once per run, right after it
builds the parent (`protocol.runner.run`); a user can call it on a parent of their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import torch
from torch import nn

from ..errors import SparsenasError, first_line
from ..models.autoparent import is_discovered
from ..models.base import NodeGroup, Parent
from .compact import compact
from .node import NodeMask


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
    groups = parent.node_groups()
    tensors = dict(parent.named_parameters()) | dict(parent.named_buffers())
    cuts = Counter((sl.tensor, sl.dim) for g in groups for sl in (*g.producers, *g.consumers))
    shared = lambda sl: cuts[(sl.tensor, sl.dim)] > 1  # noqa: E731
    discovered = is_discovered(parent)
    for g in groups:
        for sl in (*g.producers, *g.consumers):
            t = tensors.get(sl.tensor)
            if t is None:
                raise SparsenasError(
                    f"group '{g.name}' of model '{model}' names {sl.tensor}, which the model does not have; name one of its parameters or buffers"
                )
            need = sl.offset + g.size * sl.block
            # a declared slice from offset 0 alone on its dim must cover it (a wrong size shows here, not as
            # a silently partial cut); discovery also leaves a concatenated input's columns uncut
            exact = sl.offset == 0 and not shared(sl) and not discovered
            if not 0 <= sl.dim < t.ndim or sl.offset < 0 or t.shape[sl.dim] < need or (exact and t.shape[sl.dim] != need):
                at = f" from offset {sl.offset}" if sl.offset else ""
                raise SparsenasError(
                    f"group '{g.name}' of model '{model}' slices {sl.tensor} {tuple(t.shape)} along dim {sl.dim} in {g.size} "
                    f"blocks of {sl.block}{at}; that dim must have {need} entries: fix the group's size, dim or block"
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
        f"'{every[0] or type(parent).__name__}' ({first_line(every[1])}); list every tensor indexed by each group's nodes"
    )


def _left_out(parent: Parent, groups: list[NodeGroup], g: NodeGroup, model: str, where: str, error: Exception) -> str:
    """The message for group `g`, whose compaction alone makes module `where` fail with `error`."""
    # a (tensor, dim) any group cuts is spoken for: fc2.weight's rows belong to fc2 even where fc2 is as wide as fc1
    sliced = {(sl.tensor, sl.dim) for h in groups for sl in (*h.producers, *h.consumers)}
    module = parent.get_submodule(where)
    own = [(f"{where}.{n}" if where else n, t) for n, t in (*module.named_parameters(recurse=False), *module.named_buffers(recurse=False))]
    # the failing module's tensors with a dim as long as the group (or a multiple: a flatten's blocks) that the group does not cut
    missing = [
        (n, d, t.shape[d])
        for n, t in own
        for d in range(t.ndim)
        if (n, d) not in sliced and t.shape[d] % g.size == 0 and t.shape[d] >= g.size
    ]
    exact = [m for m in missing if m[2] == g.size]
    missing = exact or missing
    listed = ", ".join(dict.fromkeys(sl.tensor for sl in (*g.producers, *g.consumers)))
    if not missing:
        return (
            f"group '{g.name}' of model '{model}' slices {listed}, but cutting its nodes breaks the forward of "
            f"'{where or type(parent).__name__}' ({first_line(error)}); list every tensor indexed by its nodes, and let forward read widths from its layers"
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
