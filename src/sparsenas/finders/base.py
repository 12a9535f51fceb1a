"""The finder interface: given a parent at its init and a target sparsity, propose a mask.

A finder searches the node space (hidden units, channels: `NodeMask`), the weight space (single
weights: `WeightMask`), or both; `spaces` says which, and the run's `--space` picks one.

A finder gets a `SearchContext` (parent with θ0, data, training spec, a generator of its own) and
returns a `Found` (the mask to train, and what the search cost). It never trains the final
sub-network: the runner does that, through the same loop and budget as the controls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import torch

from ..data import Dataset
from ..errors import SparsenasError
from ..masks import NodeMask, WeightMask
from ..models import Parent
from ..registry import Registry
from .cost import SearchCost
from ..train import TrainSpec


@dataclass(frozen=True)
class SearchContext:
    parent: Parent  # the dense parent at its init θ0 (never modified by a finder)
    data: Dataset
    train: TrainSpec
    sparsity: float  # target sparsity in `space`: of hidden nodes, or of prunable weights
    seed: int  # the trial seed: it fixes θ0 and the data order
    generator: torch.Generator  # the finder's own randomness, seeded from (seed, sparsity, finder)
    options: dict[str, Any]  # the finder's options (the RunSpec fields it declares in `options`)
    space: str = "node"  # "node" or "weight"
    allocation: str = "per-layer"  # "per-layer" or "global": how a sparsity becomes per-layer counts
    # shared by every finder of one seed: work two finders (or two sparsities) would repeat, such as
    # the trained dense parent or IMP's chain of rounds, is done once per seed
    memo: dict[str, Any] = field(default_factory=dict)
    slot: int = -1  # a front finder's member (nsga2: 0 = cheapest); -1 for every other finder


Mask = Union[NodeMask, WeightMask]
Scores = Union[dict[str, torch.Tensor], list[torch.Tensor]]


@dataclass(frozen=True)
class Found:
    """A finder's answer: the mask, what the search cost, and optionally the scores that chose it
    (weight scores by tensor name, or node scores per group; the inversion check keeps the lowest) and
    the parent-shaped weights the sub-network starts from when that is not θ0 (IMP rewound to step k)."""

    mask: Mask
    cost: SearchCost = SearchCost()
    scores: Scores | None = None
    init: dict[str, torch.Tensor] | None = None


class Finder:
    """Base class: subclasses set `name`, `help`, `options` and implement `find`."""

    name: ClassVar[str]
    help: ClassVar[str]
    # RunSpec fields this finder reads; they (and only they) enter its trials' hash, so changing
    # `candidates` re-runs random-search trials but leaves dense and random trials done.
    options: ClassVar[tuple[str, ...]] = ()
    # dense is trained once per seed at sparsity 0, whatever sparsities the run sweeps
    sparsity_free: ClassVar[bool] = False
    # a control (random) is drawn `--controls` times per sparsity and seed: a distribution to compare with
    control: ClassVar[bool] = False
    # the mask spaces this finder searches
    spaces: ClassVar[tuple[str, ...]] = ("node",)
    # ranks scores with the shared score-to-mask step: `--allocation` applies, and `Found.scores`
    # are returned (so the inversion check can keep the lowest-scoring units instead)
    scored: ClassVar[bool] = False
    # how a scored finder counts a global weight-space top-k (`masks.TOPK_RULES`): "round" keeps
    # round((1-s)*N), "floor" prunes int(s*N) as the pruning-at-init papers' code does. Not "round"
    # enters the key of the finder's global weight trials, so masks made before the change keep theirs
    global_topk: ClassVar[str] = "round"
    # a multi-objective finder returns a front: it is planned once per slot (--front-size), not per
    # sparsity, and every slot gets a random sub-network of the same size beside it
    front: ClassVar[bool] = False

    def find(self, ctx: SearchContext) -> Found:
        raise NotImplementedError


FINDERS: Registry = Registry("finder")


def register(cls: type[Finder]) -> type[Finder]:
    """Class decorator: register a finder under its `name` with its `help` line.

    A name may not hold "~": the report names a finder under a sanity check "finder~check".
    """
    if "~" in cls.name or not cls.name.strip():
        raise SparsenasError(f"finder name {cls.name!r} is empty or holds '~' (which marks a sanity check in reports); rename it")
    FINDERS.register(cls.name, help=cls.help)(cls)
    return cls


def get_finder(name: str) -> Finder:
    """An instance of the registered finder `name` (unknown names list the known ones).

    >>> get_finder("random").name
    'random'
    """
    return FINDERS.get(name)()
