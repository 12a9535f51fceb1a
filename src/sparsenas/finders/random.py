"""`random`: a uniformly random mask at the target sparsity: the control every finder faces.

In the node space it keeps, in every group, the per-layer allocation's count of nodes; in the weight
space it keeps, in every layer, the per-layer allocation's count of weights (round((1-s)*n), at
least one), whatever `--allocation` the finders use: a finder whose global ranking moves weights
between layers is checked against a random mask with its own per-layer counts by `--checks shuffle`.
"""

from __future__ import annotations

from ..masks import allocate, layer_counts, random_mask, random_weight_mask
from .base import Finder, Found, SearchContext, register
from .scoring import prunable_params


@register
class Random(Finder):
    name = "random"
    help = "a uniformly random mask at the target sparsity (per-layer counts), --controls per seed; the control"
    control = True
    spaces = ("node", "weight")

    def find(self, ctx: SearchContext) -> Found:
        if ctx.space == "weight":
            sizes = tuple(p.numel() for p in prunable_params(ctx.parent).values())
            return Found(random_weight_mask(ctx.parent, layer_counts(sizes, ctx.sparsity), ctx.generator))
        groups = ctx.parent.node_groups()
        return Found(random_mask(groups, allocate(groups, ctx.sparsity), ctx.generator))
