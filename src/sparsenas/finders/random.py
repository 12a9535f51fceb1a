"""`random`: a uniformly random node mask at the target sparsity: the control every finder faces."""

from __future__ import annotations

from ..masks import allocate, random_mask
from .base import Finder, Found, SearchContext, register


@register
class Random(Finder):
    name = "random"
    help = "a uniformly random node mask at the target sparsity (per-layer allocation), --controls per seed; the control"
    control = True

    def find(self, ctx: SearchContext) -> Found:
        groups = ctx.parent.node_groups()
        return Found(random_mask(groups, allocate(groups, ctx.sparsity), ctx.generator))
