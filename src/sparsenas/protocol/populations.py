"""Cutting one seed's pending trials into populations: same compacted shape, at most K each.

Populations are consecutive slices, of at most K trials, of each shape's *pending* trials in plan
order. A run killed at any moment leaves whole populations stored, so a resumed run re-forms the same
populations and gives the numbers an uninterrupted one would have, to the last bit. K itself (from
`--population` and the device's total memory) is part of the arithmetic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from ..data import Dataset
from ..finders import get_finder
from ..finders.base import Found
from ..masks import NodeMask, compact
from ..models import Parent, build_parent
from ..train import population_size
from .find import find
from .plan import PlannedTrial
from .spec import RunSpec


def shape_of(found: Found) -> tuple:
    """What must agree for two trials to share a population: the compacted widths of a node mask
    (every weight-masked trial trains at the parent's full size), and the training budget where a
    start sets its own (`Found.train`: finetune, scratch-b).

    >>> shape_of(Found(NodeMask(((0, 1), (3,)))))
    ('node', 2, 1)
    """
    budget = () if found.train is None else (found.train,)
    if isinstance(found.mask, NodeMask):
        return ("node", *found.mask.kept_counts(), *budget)
    return ("weight", *budget)


def populations(trials: Sequence[tuple[PlannedTrial, Found]], size_of: Callable[[Found], int]) -> list[list[tuple[PlannedTrial, Found]]]:
    """Split one seed's found trials into populations: same shape (`shape_of`), at most `size_of` each.

    Shapes come in order of their first trial in the plan; each shape's trials are cut into
    consecutive slices, so the same pending trials always form the same populations.

    >>> ts = [(PlannedTrial(f, 0.5, 0, f, {}), Found(NodeMask(((0,), tuple(range(c)))))) for f, c in [("a", 1), ("b", 1), ("c", 2), ("d", 1)]]
    >>> [[t.finder for t, _ in p] for p in populations(ts, lambda f: 2)]
    [['a', 'b'], ['d'], ['c']]
    """
    shapes: dict[tuple, list[tuple[PlannedTrial, Found]]] = {}
    for item in trials:
        shapes.setdefault(shape_of(item[1]), []).append(item)
    out = []
    for members in shapes.values():
        k = max(1, size_of(members[0][1]))
        out += [list(members[i : i + k]) for i in range(0, len(members), k)]
    return out


def seed_populations(
    spec: RunSpec,
    data: Dataset,
    seed: int,
    trials: Sequence[PlannedTrial],
    device: torch.device,
    memo: dict | None = None,
) -> tuple[Parent, list[list[tuple[PlannedTrial, Found]]]]:
    """The seed's parent at θ0 and its pending `trials`, found and cut into populations.

    Both executors call this, so a population is the same wherever it trains. `memo` may carry
    front finders' stored state in (under each finder's name, see `Finder.dump_state`), and carries
    the seed's state out; nothing else is kept in it.

    >>> from sparsenas.data import load_dataset; from sparsenas.protocol import make_plan
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,), limit=64); ds = load_dataset("digits", limit=64)
    >>> _, pops = seed_populations(spec, ds, 0, make_plan(spec, (256, 128)), torch.device("cpu"))
    >>> [[t.finder for t, _ in p] for p in pops]
    [['dense'], ['random', 'random-search']]
    """
    parent = build_parent(spec.model, data.input_shape, data.num_classes, seed, spec.widths).to(device)
    memo = {} if memo is None else memo  # one seed's finders share their work (dense parent, IMP's chain)
    # a finder's trained net (`Found.trained`) served the finetune start, which copied it: not kept through training
    found = [(t, dataclasses.replace(find(parent, data, spec, t, memo), trained=None)) for t in trials if t.seed == seed]
    fronts = {name for name in spec.finders if get_finder(name).front}
    for k in [k for k in memo if k not in fronts]:
        del memo[k]  # trained nets held for the search are not needed for the final training

    def size_of(f: Found) -> int:
        net = compact(parent, f.mask) if isinstance(f.mask, NodeMask) else parent
        return population_size(net, data.input_shape, spec.train, device, spec.population_cap, masked=not isinstance(f.mask, NodeMask))

    return parent, populations(found, size_of)
