"""`dense`: the parent itself, every node kept (trained once per seed, the reference line)."""

from __future__ import annotations

from ..masks import dense_mask
from .base import Finder, Found, SearchContext, register


@register
class Dense(Finder):
    name = "dense"
    help = "the dense parent, all nodes kept; trained once per seed as the reference"
    sparsity_free = True
    spaces = ("node", "weight")

    def find(self, ctx: SearchContext) -> Found:
        return Found(dense_mask(ctx.parent.node_groups()))
