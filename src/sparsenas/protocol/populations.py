"""Cutting a run's pending trials into populations: same compacted shape, at most K each, across seeds.

Each seed's trials are found first (`find_seed`: the seed's finders share its memo). Populations are
then consecutive slices, of at most K trials, of each shape's *pending* trials in plan order, over
every seed: all seeds' dense parents are one population, and so are the seeds' random controls of
one shape. Members of different seeds train on their own data orders (`train_population`). A run
killed at any moment leaves whole populations stored, so a resumed run re-forms the same
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


def populations(
    trials: Sequence[tuple[PlannedTrial, Found]], size_of: Callable[[PlannedTrial, Found], int]
) -> list[list[tuple[PlannedTrial, Found]]]:
    """Split found trials (of any seeds, in plan order) into populations: same shape (`shape_of`), at
    most `size_of` each (the least any of the shape's trials allows: the same cut whichever of them
    is pending first).

    Shapes come in order of their first trial in the plan; each shape's trials are cut into
    consecutive slices, so the same pending trials always form the same populations.

    >>> ts = [(PlannedTrial(f, 0.5, s, f, {}), Found(NodeMask(((0,), tuple(range(c)))))) for f, c, s in [("a", 1, 0), ("b", 1, 0), ("c", 2, 0), ("d", 1, 1)]]
    >>> [[(t.finder, t.seed) for t, _ in p] for p in populations(ts, lambda t, f: 2)]
    [[('a', 0), ('b', 0)], [('d', 1)], [('c', 0)]]
    """
    shapes: dict[tuple, list[tuple[PlannedTrial, Found]]] = {}
    for item in trials:
        shapes.setdefault(shape_of(item[1]), []).append(item)
    out = []
    for members in shapes.values():
        k = max(1, min(size_of(*m) for m in members))
        out += [list(members[i : i + k]) for i in range(0, len(members), k)]
    return out


def find_seed(
    spec: RunSpec,
    data: Dataset,
    seed: int,
    trials: Sequence[PlannedTrial],
    device: torch.device,
    memo: dict | None = None,
) -> tuple[Parent, list[tuple[PlannedTrial, Found, int]]]:
    """The seed's parent at θ0 and its pending `trials`, found, each with the population size its
    shape allows on `device` (`population_size`; asked where the trial trains, as a GPU's memory
    is known only there).

    Both executors call this, so a population is the same wherever it trains. `memo` may carry
    front finders' stored state in (under each finder's name, see `Finder.dump_state`), and carries
    the seed's state out; nothing else is kept in it.

    >>> from sparsenas.data import load_dataset; from sparsenas.protocol import make_plan
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,), limit=64); ds = load_dataset("digits", limit=64)
    >>> _, found = find_seed(spec, ds, 0, make_plan(spec, (256, 128)), torch.device("cpu"))
    >>> [(t.finder, k) for t, _, k in found]
    [('dense', 128), ('random', 128), ('random-search', 128)]
    """
    parent = build_parent(spec.model, data.input_shape, data.num_classes, seed, spec.widths).to(device)
    memo = {} if memo is None else memo  # one seed's finders share their work (dense parent, IMP's chain)
    # a finder's trained net (`Found.trained`) served the finetune start, which copied it, and its
    # scores served the checks: neither is kept while every seed's trials wait for training
    found = [(t, dataclasses.replace(find(parent, data, spec, t, memo), trained=None, scores=None)) for t in trials if t.seed == seed]
    fronts = {name for name in spec.finders if get_finder(name).front}
    for k in [k for k in memo if k not in fronts]:
        del memo[k]  # trained nets held for the search are not needed for the final training
    sizes: dict[tuple, int] = {}

    def size_of(f: Found) -> int:
        shape = shape_of(f)
        if shape not in sizes:
            net = compact(parent, f.mask) if isinstance(f.mask, NodeMask) else parent
            sizes[shape] = population_size(
                net, data.input_shape, spec.train, device, spec.population_cap, masked=not isinstance(f.mask, NodeMask)
            )
        return sizes[shape]

    return parent, [(t, f, size_of(f)) for t, f in found]


def run_populations(found: Sequence[tuple[PlannedTrial, Found, int]]) -> list[list[tuple[PlannedTrial, Found]]]:
    """The populations of every seed's found trials (`find_seed`'s, concatenated in plan order).

    >>> from sparsenas.data import load_dataset; from sparsenas.protocol import make_plan
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0, 1), limit=64); ds = load_dataset("digits", limit=64)
    >>> plan = make_plan(spec, (256, 128)); cpu = torch.device("cpu")
    >>> found = [x for s in (0, 1) for x in find_seed(spec, ds, s, plan, cpu)[1]]
    >>> [[(t.finder, t.seed) for t, _ in p] for p in run_populations(found)]
    [[('dense', 0), ('dense', 1)], [('random', 0), ('random-search', 0), ('random', 1), ('random-search', 1)]]
    """
    sizes = {t.key: k for t, _, k in found}
    return populations([(t, f) for t, f, _ in found], lambda t, f: sizes[t.key])
