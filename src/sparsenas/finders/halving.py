"""`halving`: successive-halving random search (Jamieson & Talwalkar 2016; the NAS baseline of Li &
Talwalkar 2019).

`candidates` random node masks (drawn like the `random` control) are each trained `halving_steps`
steps and scored by validation loss; the best 1/`halving_eta` go on to a rung with `halving_eta`
times the steps (trained again from θ0 on the seed's data order), until one is left. Training every
rung from θ0 rather than resuming keeps each rung's score a plain function of (mask, steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..masks import allocate, random_mask
from ..measures import SearchCost
from .base import Finder, FinderOptions, Found, SearchContext, register
from .scoring import add_costs, loss_rank, proxy_losses


@dataclass(frozen=True)
class HalvingOptions(FinderOptions):
    """Successive halving's options: candidates, the halving factor and the first rung's steps.

    >>> HalvingOptions().halving_eta, HalvingOptions.tiny().candidates
    (3, 3)
    """

    candidates: int = field(default=20, metadata={"help": "random masks sampled and scored", "range": (1, 100_000)})
    halving_eta: int = field(default=3, metadata={"help": "keep the best 1/eta at every rung, eta x the steps", "range": (2, 1000)})
    halving_steps: int = field(default=8, metadata={"help": "training steps of every candidate at the first rung", "range": (1, 10**6)})

    @classmethod
    def tiny(cls) -> HalvingOptions:
        return cls(candidates=3, halving_eta=2, halving_steps=1)


@register
class Halving(Finder):
    name = "halving"
    help = "successive halving: --candidates random node masks, --halving-steps at first, best 1/--halving-eta go on with eta x the steps"
    Options = HalvingOptions
    has_search_cost = True

    def find(self, ctx: SearchContext[HalvingOptions]) -> Found:
        o = ctx.options
        groups = ctx.parent.node_groups()
        eta, steps = o.halving_eta, o.halving_steps
        alive = [random_mask(groups, allocate(groups, ctx.sparsity), ctx.generator) for _ in range(o.candidates)]
        cost = SearchCost()
        while True:
            losses, c = proxy_losses(ctx, alive, steps)
            cost = add_costs(cost, c)
            keep = max(1, math.ceil(len(alive) / eta))
            order = sorted(range(len(alive)), key=lambda i: loss_rank(losses[i], i))[:keep]
            if keep == 1:
                return Found(alive[order[0]], cost)
            alive = [alive[i] for i in sorted(order)]  # survivors keep their draw order
            steps *= eta
