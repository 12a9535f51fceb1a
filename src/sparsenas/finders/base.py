"""The finder interface: given a parent at its init and a target sparsity, propose a mask.

A finder searches the node space (hidden units, channels: `NodeMask`), the weight space (single
weights: `WeightMask`), or both; `spaces` says which, and the run's `--space` picks one.

A finder gets a `SearchContext` (parent with θ0, data, training spec, a generator of its own) and
returns a `Found` (the mask to train, and what the search cost). It never trains the final
sub-network: the runner does that, through the same loop and budget as the controls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar, Generic, TypeVar

import torch

from ..data import Dataset
from ..errors import SparsenasError
from ..masks import NodeMask, WeightMask, global_count
from ..measures import SearchCost
from ..models import Parent
from ..registry import Registry
from ..train import TrainSpec
from .options import Declaration, FinderOptions, merge

# the options type a context carries: a finder annotates `find(self, ctx: SearchContext[ItsOptions])`
# (and its helpers likewise) to read `ctx.options.<field>` typed; a bare `SearchContext` holds any options
OptionsT = TypeVar("OptionsT", bound=FinderOptions)


@dataclass(frozen=True)
class SearchContext(Generic[OptionsT]):
    parent: Parent  # the dense parent at its init θ0 (never modified by a finder)
    data: Dataset
    train: TrainSpec
    sparsity: float  # target sparsity in `space`: of hidden nodes, or of prunable weights
    seed: int  # the trial seed: it fixes θ0 and the data order
    generator: torch.Generator  # the finder's own randomness, seeded from (seed, sparsity, finder)
    options: OptionsT  # the finder's own options (an instance of its `Options`), read as attributes
    space: str = "node"  # "node" or "weight"
    allocation: str = "per-layer"  # "per-layer" or "global": how a sparsity becomes per-layer counts
    # shared by every finder of one seed: work two finders (or two sparsities) would repeat, such as
    # the trained dense parent or IMP's chain of rounds, is done once per seed. Keys are a finder's
    # name (its front state), a name ("trained_dense") or a tuple naming the work and its options
    memo: dict[Hashable, Any] = field(default_factory=dict)
    slot: int = -1  # a front finder's member (nsga2: 0 = cheapest); -1 for every other finder

    def __post_init__(self) -> None:
        # a context built by hand (a test, a notebook, a benchmark) may pass {name: value}: its
        # values read as attributes like a finder's typed options do
        if isinstance(self.options, Mapping):
            object.__setattr__(self, "options", SimpleNamespace(**self.options))


Mask = NodeMask | WeightMask
Scores = dict[str, torch.Tensor] | list[torch.Tensor]


@dataclass(frozen=True)
class Found:
    """A finder's answer: the mask, what the search cost, and optionally the scores that chose it
    (weight scores by tensor name, or node scores per group; the inversion check keeps the lowest),
    the parent-shaped weights the sub-network starts from when that is not θ0 (IMP rewound to step k),
    and the trained parent-shaped weights it ranked, if it trained any (the `finetune` start begins
    there; without them, from the seed's trained dense parent).

    `train` is set by the protocol, not by a finder: a start whose budget is not the run's
    (`finetune`, `scratch-b`) trains with it."""

    mask: Mask
    cost: SearchCost = SearchCost()
    scores: Scores | None = None
    init: dict[str, torch.Tensor] | None = None
    trained: dict[str, torch.Tensor] | None = None
    train: TrainSpec | None = None


class Finder:
    """Base class: subclasses set `name`, `help`, optionally `Options`, and implement `find`."""

    name: ClassVar[str]
    help: ClassVar[str]
    # the finder's options, declared in its own file; they (and only they) enter its trials' hash,
    # so changing `candidates` re-runs random-search trials but leaves dense and random trials done
    Options: ClassVar[type[FinderOptions]] = FinderOptions
    options: ClassVar[tuple[str, ...]] = ()  # the names `Options` declares; `register` fills it in
    # whether its search spends anything (candidates, steps, FLOPs) before the final training: dense
    # and random do not, and the tests hold every finder to what it declares here
    has_search_cost: ClassVar[bool] = False
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
    # it trains work shared by the seed's finders (`scoring.trained_dense`, IMP's chain): on a parent
    # with dropout that work has been seeded per work, not by the trial that asks first, since
    # `scoring.shared_work`; such trials' keys say so (`rng`), so none mixes with one trained before
    shares_trained_work: ClassVar[bool] = False
    # a multi-objective finder returns a front: it is planned once per slot (--front-size), not per
    # sparsity, and every slot gets a random sub-network of the same size beside it
    front: ClassVar[bool] = False
    # another finder whose generator this one draws from (lce-search draws random-search's candidates,
    # so the two are compared on the same masks); "" = its own, seeded by its name
    draws_as: ClassVar[str] = ""
    # versions of what decides its numbers beyond its options (lce-search: the extrapolator and its
    # stopping rule), put in its trials' keys: a change that moves them gives new keys, never mixed
    decided_by: ClassVar[dict[str, str]] = {}

    def find(self, ctx: SearchContext) -> Found:
        raise NotImplementedError

    @classmethod
    def searches(cls) -> bool:
        """Whether its trials are a found mask at a target sparsity, which checks and starts vary: not
        dense, a random control or a front finder.

        >>> get_finder("snip").searches(), get_finder("random").searches()
        (True, False)
        """
        return not (cls.control or cls.sparsity_free or cls.front)

    def decided_by_for(self, options: Any) -> dict[str, str]:
        """What of `decided_by` decides the numbers of its trials with these `options` (all, unless a
        finder says otherwise: lce-search makes no forecast with --lce-stop 0).

        >>> get_finder("snip").decided_by_for(None)
        {}
        """
        return dict(self.decided_by)

    def check_sparsities(self, parent: Parent, sparsities: Sequence[float]) -> None:
        """Refuse, with a one-line `SparsenasError`, a sparsity this finder cannot reach on `parent`
        (random-erk keeps a weight per layer); the run asks before anything trains, so a bad
        `--sparsities` never costs the work of the finders before it. Default: any.

        >>> from sparsenas.models import build_parent
        >>> get_finder("snip").check_sparsities(build_parent("mlp", (1, 8, 8), 10, 0, (8,)), [0.999])
        """

    def key_facts(self, parent: Parent, allocation: str = "per-layer") -> dict[str, str]:
        """Facts about `parent` that decide this finder's masks under a rule changed since the finder
        shipped, for its trials' keys: only parents (and allocations) where the change moves a mask
        get them, so every other stored trial keeps its key (bn-scale on a BatchNorm over a
        concatenation). Default: none.

        >>> from sparsenas.models import build_parent
        >>> get_finder("snip").key_facts(build_parent("mlp", (1, 8, 8), 10, 0, (8,)))
        {}
        """
        return {}

    def check_parent(self, parent: Parent, model: str = "") -> None:
        """Refuse, with a one-line `SparsenasError`, a parent this finder cannot search (bn-scale needs
        a BatchNorm scale on every node group); the run asks before anything trains. Default: any.

        >>> from sparsenas.models import build_parent
        >>> get_finder("snip").check_parent(build_parent("mlp", (1, 8, 8), 10, 0, (8,)), "mlp")
        """

    def topk_changes_mask(self, prunable: int, sparsity: float, options: Any) -> bool:
        """Whether `global_topk` keeps another number of `prunable` weights at `sparsity` than the
        rounding every finder used before: only then do this finder's global weight masks, and so its
        trial keys, differ from those of stored runs (one-shot finders rank once; SynFlow overrides
        this to look at every round).

        >>> from sparsenas.finders import get_finder
        >>> get_finder("snip").topk_changes_mask(10, 0.36, None), get_finder("snip").topk_changes_mask(10, 0.5, None)
        (True, False)
        """
        return global_count((prunable,), sparsity, "round") != global_count((prunable,), sparsity, self.global_topk)

    def slots(self, options: Any) -> int:
        """How many trials a front finder proposes per seed (its front's members); 0 for the others."""
        return 0

    # A front finder searches once per seed and answers every slot from that one search, which it
    # keeps in the seed's memo under its own name. Where a search is not repeatable (a latency
    # objective), the runner stores that state before the first slot trains and hands it back on
    # resume, so every stored slot and its random twin come from one search: these two say how.
    def dump_state(self, state: Any) -> str:
        """The memo entry `memo[self.name]` as text the run stores (front finders only)."""
        raise NotImplementedError(f"front finder '{self.name}' must define dump_state and load_state")

    def load_state(self, text: str) -> Any:
        """The memo entry back from `dump_state`'s text."""
        raise NotImplementedError(f"front finder '{self.name}' must define dump_state and load_state")


FINDERS: Registry = Registry("finder")


def register(cls: type[Finder]) -> type[Finder]:
    """Class decorator: register a finder under its `name` with its `help` line.

    A name may not hold "~": the report names a finder under a sanity check "finder~check".
    Its `Options` must agree with every other finder's declaration of a shared option name (one
    flag sets them all): a disagreement is refused here, before any run is planned.
    """
    if "~" in cls.name or not cls.name.strip():
        raise SparsenasError(f"finder name {cls.name!r} is empty or holds '~' (which marks a sanity check in reports); rename it")
    others = [(e.name, e.obj.Options) for e in FINDERS.entries() if e.name != cls.name]
    merge([*others, (cls.name, cls.Options)])  # raises on a disagreement
    cls.options = tuple(f.name for f in dataclasses.fields(cls.Options))
    FINDERS.register(cls.name, help=cls.help)(cls)
    return cls


def declared_options() -> dict[str, Declaration]:
    """Every registered finder's options, one declaration per name (the flat flags and keys).

    >>> declared_options()["candidates"].finders
    ('halving', 'lce-search', 'random-search')
    """
    entries = tuple((e.name, e.obj.Options) for e in FINDERS.entries())
    if entries not in _DECLARED:  # every RunSpec asks: merge once per set of registered finders
        _DECLARED.clear()
        _DECLARED[entries] = merge(entries)
    return dict(_DECLARED[entries])


_DECLARED: dict[tuple, dict[str, Declaration]] = {}


def get_finder(name: str) -> Finder:
    """An instance of the registered finder `name` (unknown names list the known ones).

    >>> get_finder("random").name
    'random'
    """
    return FINDERS.get(name)()
