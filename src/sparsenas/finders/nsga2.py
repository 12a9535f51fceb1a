"""`nsga2`: hardware-aware multi-objective search over per-layer node widths (NSGA-II, pymoo).

A candidate is a vector of per-layer widths w (1 <= w_l <= the parent's width). Its sub-network keeps,
in each layer, the first w_l nodes of a random order of that layer's nodes fixed per seed, so the
search is over the architecture (how wide each layer is), not over which nodes. Two objectives are
minimized: the proxy error (1 - validation accuracy after `nsga_steps` training steps from θ0, on the
seed's data order, the proxy of random-search and evolution) and a cost of the compacted
sub-network: its measured latency (median of timed forward passes at batch 1 on the run's device),
its parameters or its FLOPs (`--objectives accuracy,latency|params|flops`).

NSGA-II (Deb et al. 2002) comes from pymoo (`NSGA2`: binary tournaments on rank and crowding, SBX
crossover and polynomial mutation rounded to integers, duplicates eliminated), run for
`generations` generations of `evo_population` candidates, seeded from the trial seed (NumPy's
global generator is saved and restored around the search all the same, should a pymoo release draw
from it). With `--predictor ridge|gbm` every generation after the first is proposed by a surrogate
(finders/surrogate.py); only the candidates trained count and are charged.

A latency search is not repeatable (timings are noisy), so the runner stores each seed's front
(`front_to_json`) before training it; a resumed run reuses it instead of searching again, so every
stored member and its same-size twin come from one search.

The search returns a front of `front_size` sub-networks: every evaluated candidate is ranked by
non-dominated sorting; whole fronts are taken in rank order, and the last one that does not fit whole
contributes members evenly spaced along its cost. Each member is one trial (`slot` 0 = cheapest),
trained by the protocol like every other trial and compared with a random sub-network of the same
size (the same number of kept nodes, spread over the layers in proportion to their widths, random
nodes): the runner plans that control beside each slot. The whole search is charged to every slot.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import SparsenasError
from ..masks import NodeMask, compact, count_flops, count_params
from ..measures import SearchCost
from .base import Finder, FinderOptions, Found, SearchContext, register
from .front import pick_front
from .scoring import proxy_scores
from .surrogate import guided_search

OBJECTIVES = ("accuracy", "latency", "params", "flops")
PREDICTORS = ("none", "ridge", "gbm")  # --predictor: none is plain NSGA-II
PREDICTOR_HELP = (
    "a regressor of the proxy error over per-layer widths (scikit-learn), refit each generation on every candidate trained so far, "
    "whose inner NSGA-II proposes the next generation (LINAS-style); none: plain NSGA-II"
)
POOL = 100  # --predictor-pool's default
POOL_HELP = "population of the surrogate's inner NSGA-II, which proposes the next generation"
EVALUATED = ("nsga2", "evaluated")  # memo key: every candidate the seed's search trained, in order
COSTS = ("latency", "params", "flops")
LATENCY_REPEATS = 15  # timed forward passes per candidate (median), after 3 untimed


@dataclass(frozen=True)
class Candidate:
    widths: tuple[int, ...]
    mask: NodeMask
    proxy_acc: float
    cost: float  # in the cost objective's unit: ms, parameters or FLOPs per sample


@dataclass(frozen=True)
class NSGA2Options(FinderOptions):
    """NSGA-II's options: objectives, population, generations, proxy steps and the front's size.

    >>> NSGA2Options(front_size=9, evo_population=8).validate()
    Traceback (most recent call last):
    sparsenas.errors.SparsenasError: --front-size 9 is more than --evo-population 8; raise --evo-population or lower --front-size
    """

    # declared in this order because the trial keys hash the options in it
    objectives: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "accuracy and one cost to trade it against: latency, params or flops; giving it adds the nsga2 finder "
            "(nsga2 without it trades accuracy against latency)",
            "metavar": "accuracy,COST",
            "implies_finder": True,
        },
    )  # the hardware-aware search, asked for by its objectives
    evo_population: int = field(default=16, metadata={"help": "candidates per generation", "range": (1, 10_000)})
    generations: int = field(default=10, metadata={"help": "generations", "range": (0, 10_000)})
    nsga_steps: int = field(
        default=50, metadata={"help": "training steps of every candidate before its proxy accuracy is read", "range": (1, 10**6)}
    )
    front_size: int = field(
        default=6,
        metadata={"help": "sub-networks of the found front trained in full, each beside a random one of its size", "range": (1, 1000)},
    )
    # declared after nsga2's trials were stored ("later"): at their defaults they stay out of its keys
    predictor: str = field(default="none", metadata={"help": PREDICTOR_HELP, "choices": PREDICTORS, "later": True})
    predictor_pool: int = field(default=POOL, metadata={"help": POOL_HELP, "range": (2, 100_000), "later": True})

    def validate(self, in_run: bool = True) -> None:
        objs = tuple(self.objectives)
        if objs and (len(objs) != 2 or objs[0] != "accuracy" or objs[1] not in COSTS):
            raise SparsenasError(
                f"--objectives {','.join(objs)} is not accuracy and one cost; use accuracy,latency or accuracy,params or accuracy,flops"
            )
        if self.predictor == "none" and self.predictor_pool != POOL:
            raise SparsenasError(
                f"--predictor-pool {self.predictor_pool} sizes the surrogate's search; add --predictor ridge or gbm, or drop it"
            )
        if in_run and self.front_size > self.evo_population:
            raise SparsenasError(
                f"--front-size {self.front_size} is more than --evo-population {self.evo_population}; "
                "raise --evo-population or lower --front-size"
            )

    @classmethod
    def tiny(cls) -> NSGA2Options:
        return cls(objectives=("accuracy", "params"), evo_population=3, generations=2, nsga_steps=2, front_size=2)


def objectives_of(options: NSGA2Options) -> tuple[str, str]:
    """The (accuracy, cost) objectives a spec asks for; accuracy,latency by default.

    >>> objectives_of(NSGA2Options()), objectives_of(NSGA2Options(objectives=("accuracy", "params")))
    (('accuracy', 'latency'), ('accuracy', 'params'))
    """
    objs = tuple(options.objectives or ("accuracy", "latency"))
    return objs[0], objs[1]


def mask_of(orders: list[torch.Tensor], widths: tuple[int, ...]) -> NodeMask:
    """The first `widths[l]` nodes of each layer's fixed random order.

    >>> mask_of([torch.tensor([2, 0, 1])], (2,)).kept
    ((0, 2),)
    """
    return NodeMask(tuple(tuple(sorted(o[:w].tolist())) for o, w in zip(orders, widths)))


def search_front(ctx: SearchContext[NSGA2Options]) -> tuple[list[Candidate], SearchCost]:
    """Run NSGA-II once per seed (memoized in `ctx.memo`) and return the chosen front and its cost."""
    if "nsga2" in ctx.memo:
        return ctx.memo["nsga2"]
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    start = time.perf_counter()
    _, cost_name = objectives_of(ctx.options)
    groups = ctx.parent.node_groups()
    sizes = [g.size for g in groups]
    gen = ctx.generator
    orders = [torch.randperm(n, generator=gen) for n in sizes]
    steps = ctx.options.nsga_steps
    x1 = ctx.data.val.x[:1]
    seen: dict[tuple[int, ...], Candidate] = {}
    spent: list[SearchCost] = []

    def cost_of(net: torch.nn.Module) -> float:
        if cost_name == "params":
            return float(count_params(net))
        if cost_name == "flops":
            return float(count_flops(net, ctx.data.input_shape))
        from ..timing import measure_latency  # here: it imports scipy.stats, which only a latency objective needs

        return measure_latency(net.eval(), x1, warmup=3, repeats=LATENCY_REPEATS).median_ms

    def evaluate(rows: list[tuple[int, ...]]) -> None:
        fresh = list(dict.fromkeys(w for w in rows if w not in seen))
        if not fresh:
            return
        masks = [mask_of(orders, w) for w in fresh]
        _, accs, c = proxy_scores(ctx, masks, steps)
        spent.append(c)
        for w, m, a in zip(fresh, masks, accs):
            seen[w] = Candidate(w, m, a, cost_of(compact(ctx.parent, m)))

    class Widths(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=len(sizes), n_obj=2, xl=np.ones(len(sizes)), xu=np.array(sizes, dtype=float), vtype=int)

        def _evaluate(self, x: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
            out["F"] = objectives([tuple(int(v) for v in r) for r in np.asarray(x).round().astype(int)])

    def objectives(rows: list[tuple[int, ...]]) -> np.ndarray:  # (len(rows), 2): proxy error, cost
        evaluate(rows)
        return np.array([[1.0 - seen[w].proxy_acc, seen[w].cost] for w in rows])

    n = ctx.options.evo_population
    algorithm = NSGA2(
        pop_size=n,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
    state = np.random.get_state()  # pymoo seeds NumPy's global generator: leave the caller's alone
    try:
        if ctx.options.predictor == "none":
            minimize(Widths(), algorithm, ("n_gen", max(1, ctx.options.generations)), seed=seed, verbose=False)
        else:  # LINAS-style (finders/surrogate.py): params and FLOPs are exact and cheap there; latency is measured, so not
            exact = None if cost_name == "latency" else lambda w: cost_of(compact(ctx.parent, mask_of(orders, w)))
            guided_search(algorithm, Widths(), seed, objectives, exact, ctx.options, int(torch.randint(2**31 - 1, (1,), generator=gen)))
    finally:
        np.random.set_state(state)
    everything = list(seen.values())
    points = np.array([[1.0 - c.proxy_acc, c.cost] for c in everything])
    front = [everything[i] for i in pick_front(points, ctx.options.front_size)]
    cost = SearchCost(
        candidates=len(everything),
        steps=sum(c.steps for c in spent),
        flops=sum(c.flops for c in spent),
        seconds=time.perf_counter() - start,
    )
    ctx.memo["nsga2"] = (front, cost)  # a front finder keeps its state under its own name (Finder.dump_state)
    ctx.memo[EVALUATED] = everything
    return front, cost


def front_to_json(front: list[Candidate], cost: SearchCost) -> str:
    """A seed's front and its search cost as JSON (stored in the run, read by `front_from_json`).

    >>> f = [Candidate((2, 1), NodeMask(((0, 3), (1,))), 0.5, 3.0)]
    >>> front_from_json(front_to_json(f, SearchCost(4, 5, 6.0, 7.0))) == (f, SearchCost(4, 5, 6.0, 7.0))
    True
    """
    return json.dumps(
        {
            "front": [
                {"widths": list(c.widths), "kept": [list(k) for k in c.mask.kept], "proxy_acc": c.proxy_acc, "cost": c.cost} for c in front
            ],
            "search": dataclasses.asdict(cost),
        }
    )


def front_from_json(text: str) -> tuple[list[Candidate], SearchCost]:
    d = json.loads(text)
    front = [
        Candidate(tuple(c["widths"]), NodeMask(tuple(tuple(k) for k in c["kept"])), float(c["proxy_acc"]), float(c["cost"]))
        for c in d["front"]
    ]
    return front, SearchCost(**d["search"])


@register
class NSGA2Finder(Finder):
    name = "nsga2"
    help = (
        "hardware-aware NSGA-II over per-layer widths (pymoo): --objectives accuracy,latency|params|flops; trains a front of --front-size"
    )
    Options = NSGA2Options
    has_search_cost = True
    front = True  # planned per front slot (not per sparsity), each beside a random net of its size

    def find(self, ctx: SearchContext[NSGA2Options]) -> Found:
        front, cost = search_front(ctx)
        slot = min(max(ctx.slot, 0), len(front) - 1)  # fewer distinct candidates than slots: repeat the last
        return Found(front[slot].mask, cost)

    def slots(self, options: NSGA2Options) -> int:
        return options.front_size

    def dump_state(self, state: tuple[list[Candidate], SearchCost]) -> str:
        return front_to_json(*state)

    def load_state(self, text: str) -> tuple[list[Candidate], SearchCost]:
        return front_from_json(text)
