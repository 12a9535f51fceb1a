"""`evolution`: an elitist genetic search over node masks at a fixed sparsity.

A population of `evo_population` random masks (the per-layer allocation's counts, as the `random`
control) evolves for `generations` generations. A child takes two parents, each the fitter of two
members drawn at random (binary tournaments); per node group it keeps the nodes both parents keep and
fills the group's count at random from the nodes only one keeps (uniform crossover at fixed counts),
then a mutation swaps one kept node with a removed one in one random group. Children and parents
compete, the best `evo_population` distinct masks survive. Fitness is the proxy of `random-search`:
validation loss at θ0, or after `proxy_steps` training steps (lower is better). Every evaluated
mask is charged to the search cost; the fittest mask ever seen is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..masks import NodeMask, allocate, random_mask
from .base import Finder, FinderOptions, Found, SearchContext, register
from .scoring import add_costs, loss_rank, proxy_losses


def _pick(gen: torch.Generator, n: int) -> int:
    return int(torch.randint(n, (1,), generator=gen))


def crossover(a: NodeMask, b: NodeMask, gen: torch.Generator) -> NodeMask:
    """Per group: the nodes both parents keep, filled up to the group's count from the rest of the
    two parents' nodes at random.

    >>> c = crossover(NodeMask(((0, 1, 2),)), NodeMask(((1, 2, 3),)), torch.Generator().manual_seed(0))
    >>> c.kept_counts(), {1, 2} <= set(c.kept[0]) <= {0, 1, 2, 3}
    ((3,), True)
    """
    kept = []
    for ka, kb in zip(a.kept, b.kept):
        both = sorted(set(ka) & set(kb))
        either = sorted(set(ka) ^ set(kb))
        extra = [either[i] for i in torch.randperm(len(either), generator=gen)[: len(ka) - len(both)].tolist()]
        kept.append(tuple(sorted(both + extra)))
    return NodeMask(tuple(kept))


def mutate(mask: NodeMask, sizes: list[int], gen: torch.Generator) -> NodeMask:
    """Swap one kept node for a removed one in one random group that has both.

    >>> m = mutate(NodeMask(((0, 1),)), [4], torch.Generator().manual_seed(0)); m.kept_counts(), m != NodeMask(((0, 1),))
    ((2,), True)
    """
    open_groups = [i for i, (k, n) in enumerate(zip(mask.kept, sizes)) if 0 < len(k) < n]
    if not open_groups:
        return mask
    g = open_groups[_pick(gen, len(open_groups))]
    kept = list(mask.kept[g])
    removed = sorted(set(range(sizes[g])) - set(kept))
    kept[_pick(gen, len(kept))] = removed[_pick(gen, len(removed))]
    groups = list(mask.kept)
    groups[g] = tuple(sorted(kept))
    return NodeMask(tuple(groups))


@dataclass(frozen=True)
class EvolutionOptions(FinderOptions):
    """Evolution's options: population, generations and the proxy's training steps.

    >>> EvolutionOptions().evo_population, EvolutionOptions.tiny().generations
    (16, 2)
    """

    # declared in this order because the trial keys hash the options in it
    evo_population: int = field(default=16, metadata={"help": "masks per generation", "range": (1, 10_000)})
    generations: int = field(default=10, metadata={"help": "generations", "range": (0, 10_000)})
    proxy_steps: int = field(
        default=0, metadata={"help": "training steps before scoring (0 = validation loss at init)", "range": (0, 10**7)}
    )

    @classmethod
    def tiny(cls) -> EvolutionOptions:
        return cls(evo_population=3, generations=2, proxy_steps=2)


@register
class Evolution(Finder):
    name = "evolution"
    help = "genetic search over node masks: --evo-population masks, --generations rounds of tournament, crossover, mutation"
    Options = EvolutionOptions
    has_search_cost = True

    def find(self, ctx: SearchContext[EvolutionOptions]) -> Found:
        o = ctx.options
        gen = ctx.generator
        groups = ctx.parent.node_groups()
        sizes = [g.size for g in groups]
        n, steps = o.evo_population, o.proxy_steps
        pop = [random_mask(groups, allocate(groups, ctx.sparsity), gen) for _ in range(n)]
        fit, cost = proxy_losses(ctx, pop, steps)
        seen = {m.kept: f for m, f in zip(pop, fit)}
        for _ in range(o.generations):

            def parent() -> NodeMask:
                i, j = _pick(gen, len(pop)), _pick(gen, len(pop))
                return pop[i] if loss_rank(fit[i], 0) <= loss_rank(fit[j], 1) else pop[j]

            children = [mutate(crossover(parent(), parent(), gen), sizes, gen) for _ in range(n)]
            fresh = list({c.kept: c for c in children if c.kept not in seen}.values())
            if fresh:
                losses, c = proxy_losses(ctx, fresh, steps)
                cost = add_costs(cost, c)
                seen.update({m.kept: f for m, f in zip(fresh, losses)})
            # elitist survival over parents and children; a non-finite fitness ranks last
            pool = list({m.kept: m for m in pop + children}.values())
            order = sorted(range(len(pool)), key=lambda i: loss_rank(seen[pool[i].kept], i))[:n]
            pop, fit = [pool[i] for i in order], [seen[pool[i].kept] for i in order]
        everything = list(seen)
        best = min(range(len(everything)), key=lambda i: loss_rank(seen[everything[i]], i))
        return Found(NodeMask(everything[best]), cost)
