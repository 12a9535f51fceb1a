"""`random-search`: sample N random node masks, score each by a cheap proxy, keep the best.

The proxy is the validation loss of the candidate sub-network (θ0 restricted to its nodes), either
at init (`proxy_steps = 0`, the default) or after `proxy_steps` training steps on the seed's data
order. Lower is better. This is the random-search baseline of Farahani (arXiv 2403.08265); its
candidates are drawn by the same `random_mask` as the `random` control, so the two differ only in
the selection step.
"""

from __future__ import annotations

import math
import time

from ..masks import allocate, compact, count_flops, random_mask
from .cost import SearchCost
from ..train import evaluate, train
from .base import Finder, Found, SearchContext, register


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
        best, best_loss, flops, steps = None, math.inf, 0.0, 0
        for _ in range(n):
            cand = random_mask(groups, counts, ctx.generator)
            net = compact(ctx.parent, cand)  # a copy: θ0 restricted to the candidate's nodes
            per_sample = count_flops(net, ctx.data.input_shape)
            if k > 0:
                r = train(net, ctx.data, ctx.train, data_seed=ctx.seed, max_steps=k)
                steps += r.steps  # fewer than k when the whole budget is shorter than k steps
                flops += 3.0 * per_sample * r.samples  # forward + backward ~ 3 forwards
            loss, _ = evaluate(net, ctx.data.val)
            flops += per_sample * len(ctx.data.val)
            # a candidate whose proxy is not finite (diverged during its k steps) is never chosen
            # over a finite one; if none is finite the first candidate stands
            if best is None or (math.isfinite(loss) and loss < best_loss):
                best = cand
                best_loss = loss if math.isfinite(loss) else math.inf
        assert best is not None  # n >= 1 is validated by the spec
        cost = SearchCost(candidates=n, steps=steps, flops=flops, seconds=time.perf_counter() - start)
        return Found(best, cost)
