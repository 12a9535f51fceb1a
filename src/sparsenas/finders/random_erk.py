"""`random-erk`: a random weight mask with Erdos-Renyi-Kernel per-layer densities: a second control.

ERK (Evci et al. 2020, "Rigging the Lottery: Making All Tickets Winners", RigL) gives each layer a
density proportional to (sum of its dims) / (product of its dims), so small layers (the first conv,
the classifier) keep more of their weights and wide ones fewer; Liu et al. 2022 ("The Unreasonable
Effectiveness of Random Pruning") show random masks at these densities are a much stronger baseline
than uniform ones. Inside each layer the kept weights are drawn uniformly, as `random` draws them.

Its counts (`masks.erk_counts`) total exactly `global_count` at the target sparsity, round((1-s)*N),
the uniform total, so the two controls differ only in how the weights are spread over the layers
(`random` rounds each layer's count on its own: on nets of small layers its sum can be a few weights
off, e.g. resnet20 at width 4 and s = 0.9 keeps 1704 weights there against 1706 here). The
node space has no ERK (a node mask keeps whole units, whose layers' sizes follow from the widths),
so the finder searches the weight space only: `--space node` with it is refused before a run starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..masks import erk_counts, random_weight_mask
from ..models import Parent
from .base import Finder, Found, SearchContext, register
from .scoring import prunable_params


@register
class RandomErk(Finder):
    name = "random-erk"
    help = "a random weight mask with ERK per-layer densities (RigL), the uniform control's total, --controls per seed; a control"
    control = True
    spaces = ("weight",)

    def check_sparsities(self, parent: Parent, sparsities: Sequence[float]) -> None:
        shapes = [tuple(p.shape) for p in prunable_params(parent).values()]
        for s in sparsities:
            erk_counts(shapes, s)  # refuses one that keeps fewer weights than layers

    def find(self, ctx: SearchContext) -> Found:
        """A uniformly random mask inside each layer, at the layers' ERK counts.

        >>> import torch; from sparsenas.models import build_parent
        >>> p = build_parent("lenet-300-100", (1, 28, 28), 10, 0)
        >>> ctx = SearchContext(p, None, None, 0.98, 0, torch.Generator().manual_seed(0), {}, space="weight")  # no data, no training: it reads neither
        >>> RandomErk().find(ctx).mask.kept_counts()
        (3621, 1336, 367)
        """
        shapes = [tuple(p.shape) for p in prunable_params(ctx.parent).values()]
        return Found(random_weight_mask(ctx.parent, erk_counts(shapes, ctx.sparsity), ctx.generator))
