"""The finder interface: given a parent at its init and a target sparsity, propose a node mask.

A finder gets a `SearchContext` (parent with θ0, data, training spec, a generator of its own) and
returns a `Found` (the mask to train, and what the search cost). It never trains the final
sub-network: the runner does that, through the same loop and budget as the controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..data import Dataset
from ..masks import NodeMask
from ..models import Parent
from ..registry import Registry
from .cost import SearchCost
from ..train import TrainSpec


@dataclass(frozen=True)
class SearchContext:
    parent: Parent  # the dense parent at its init θ0 (never modified by a finder)
    data: Dataset
    train: TrainSpec
    sparsity: float  # target node sparsity
    seed: int  # the trial seed: it fixes θ0 and the data order
    generator: torch.Generator  # the finder's own randomness, seeded from (seed, sparsity, finder)
    options: dict[str, Any]  # the finder's options (the RunSpec fields it declares in `options`)


@dataclass(frozen=True)
class Found:
    mask: NodeMask
    cost: SearchCost = SearchCost()


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

    def find(self, ctx: SearchContext) -> Found:
        raise NotImplementedError


FINDERS: Registry = Registry("finder")


def register(cls: type[Finder]) -> type[Finder]:
    """Class decorator: register a finder under its `name` with its `help` line."""
    FINDERS.register(cls.name, help=cls.help)(cls)
    return cls


def get_finder(name: str) -> Finder:
    """An instance of the registered finder `name` (unknown names list the known ones).

    >>> get_finder("random").name
    'random'
    """
    return FINDERS.get(name)()
