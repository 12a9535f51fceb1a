"""`random-search`: sample N random node masks, score each by a cheap proxy, keep the best.

The proxy is the validation loss of the candidate sub-network (θ0 restricted to its nodes), either
at init (`proxy_steps = 0`, the default) or after `proxy_steps` training steps on the seed's data
order. Lower is better. This is the random-search baseline of Farahani (arXiv 2403.08265); its
candidates are drawn by the same `random_mask` as the `random` control, so the two differ only in
the selection step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..masks import allocate, random_mask
from .base import Finder, FinderOptions, Found, SearchContext, register
from .scoring import proxy_losses


@dataclass(frozen=True)
class RandomSearchOptions(FinderOptions):
    """Random search's options: how many candidates, and the proxy's training steps.

    >>> RandomSearchOptions().candidates, RandomSearchOptions.tiny().proxy_steps
    (20, 2)
    """

    candidates: int = field(default=20, metadata={"help": "random masks sampled and scored", "range": (1, 100_000)})
    proxy_steps: int = field(
        default=0, metadata={"help": "training steps before scoring (0 = validation loss at init)", "range": (0, 10**7)}
    )

    @classmethod
    def tiny(cls) -> RandomSearchOptions:
        return cls(candidates=3, proxy_steps=2)


@register
class RandomSearch(Finder):
    name = "random-search"
    help = "N random node masks (--candidates) scored by validation loss at init or after --proxy-steps; best kept"
    Options = RandomSearchOptions
    has_search_cost = True

    def find(self, ctx: SearchContext[RandomSearchOptions]) -> Found:
        o = ctx.options
        groups = ctx.parent.node_groups()
        counts = allocate(groups, ctx.sparsity)
        cands = [random_mask(groups, counts, ctx.generator) for _ in range(o.candidates)]
        losses, cost = proxy_losses(ctx, cands, o.proxy_steps)
        return Found(cands[best_candidate(losses)], cost)


def best_candidate(losses: list[float]) -> int:
    """Index of the lowest proxy loss; earliest on ties.

    A candidate whose proxy is not finite (it diverged during its k steps) is never chosen over a
    finite one; if none is finite the first candidate stands.

    >>> best_candidate([float("nan"), 2.0, 1.0, float("inf"), 1.0]), best_candidate([float("nan")] * 2)
    (2, 0)
    """
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    return min(finite, key=lambda i: (losses[i], i)) if finite else 0
