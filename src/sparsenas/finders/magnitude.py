"""`magnitude`: the one-shot lottery ticket (Frankle & Carbin 2019, one-shot variant).

Train the dense parent with the trial's own budget and data order, keep the weights of largest
magnitude |θ_T| (or, in the node space, the nodes whose incoming weights have the largest L2 norm:
the node score is the sum of θ_T² over its incoming weights), and rewind the kept weights to the
parent's init θ0: the runner then trains the ticket exactly like its controls. The dense training is
the search cost (shared with `imp` within a seed, but charged to each).
"""

from __future__ import annotations

from .base import Finder, Found, SearchContext, register
from .scoring import GLOBAL_TOPK, found, prunable_params, to_mask, trained_dense


@register
class Magnitude(Finder):
    name = "magnitude"
    help = "one-shot lottery ticket: train the dense parent, keep the largest |weights| (nodes: weight norm), rewind to init"
    spaces = ("node", "weight")
    scored = True
    has_search_cost = True  # it trains the dense parent
    shares_trained_work = True  # the seed's trained parent (see Finder.shares_trained_work)
    global_topk = GLOBAL_TOPK  # it ranks through `to_mask`

    def find(self, ctx: SearchContext) -> Found:
        net, cost = trained_dense(ctx)
        weights = prunable_params(net)
        # node space ranks by squared L2 norm (same order as the norm); weights by |θ|
        scores = {n: (w.detach() ** 2 if ctx.space == "node" else w.detach().abs()) for n, w in weights.items()}
        mask, ranked = to_mask(ctx, scores, topk=self.global_topk)
        return found(mask, cost, ranked, trained=net)
