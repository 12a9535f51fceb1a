"""`random-search`: sample N random node masks, score each by a cheap proxy, keep the best.

The proxy is the validation loss of the candidate sub-network (θ0 restricted to its nodes), either
at init (`proxy_steps = 0`, the default) or after `proxy_steps` training steps on the seed's data
order. Lower is better. This is the random-search baseline of Farahani (arXiv 2403.08265); its
candidates are drawn by the same `random_mask` as the `random` control, so the two differ only in
the selection step. All candidates share one compacted shape, so they are scored (and trained for
the proxy) as populations of `CANDIDATE_BATCH` at once: a protocol constant, not the runtime
`--population` cap, because a population's size is part of its arithmetic and a near-tie between
two candidates must not be decided by a runtime setting.
"""

from __future__ import annotations

import math
import time

from ..masks import allocate, compact, count_flops, random_mask
from ..train import Population, train_population
from .base import Finder, Found, SearchContext, register
from .cost import SearchCost

CANDIDATE_BATCH = 32  # candidates scored (and proxy-trained) together; part of the protocol


@register
class RandomSearch(Finder):
    name = "random-search"
    help = "N random node masks (--candidates) scored by validation loss at init or after --proxy-steps; best kept"
    options = ("candidates", "proxy_steps")

    def find(self, ctx: SearchContext) -> Found:
        start = time.perf_counter()
        n, k = int(ctx.options["candidates"]), int(ctx.options["proxy_steps"])
        groups = ctx.parent.node_groups()
        counts = allocate(groups, ctx.sparsity)
        cands = [random_mask(groups, counts, ctx.generator) for _ in range(n)]
        losses: list[float] = []
        flops, steps = 0.0, 0
        for i in range(0, n, CANDIDATE_BATCH):
            nets = [compact(ctx.parent, c) for c in cands[i : i + CANDIDATE_BATCH]]  # copies: θ0 on the candidates' nodes
            per_sample = count_flops(nets[0], ctx.data.input_shape)
            if k > 0:
                for r in train_population(nets, ctx.data, ctx.train, data_seed=ctx.seed, max_steps=k):
                    steps += r.steps  # fewer than k when the whole budget is shorter than k steps
                    flops += 3.0 * per_sample * r.samples  # forward + backward ~ 3 forwards
            losses += Population(nets, ctx.train).evaluate(ctx.data.val)[0]
            flops += per_sample * len(ctx.data.val) * len(nets)
        cost = SearchCost(candidates=n, steps=steps, flops=flops, seconds=time.perf_counter() - start)
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
