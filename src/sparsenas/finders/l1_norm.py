"""`l1-norm`: filter pruning by the L1 norm of each filter's weights (Li, Kadav, Durdanovic, Samet &
Graf, ICLR 2017, "Pruning Filters for Efficient ConvNets").

Train the dense parent with the trial's own budget and data order (the same trained parent as
`magnitude` and `imp` of the seed: it is trained once), score every filter (a conv's output channel,
a linear layer's unit) by the sum of the absolute values of its incoming weights, keep the
highest-scoring ones and rewind them to θ0, so the ticket is trained exactly like its controls.

A node group that spans several layers (channels joined by a residual add) scores each channel by
the sum of its filters' L1 norms over every conv that writes the shared stream. Li et al. rank each
layer on its own ("independent" pruning): that is the default per-layer allocation; L1 norms of
different layers are not on one scale, so `--allocation global` is allowed but is not the paper's.
In the weight space a single weight's L1 norm is its magnitude: use `magnitude` there.
"""

from __future__ import annotations

import torch

from ..models import Parent
from .base import Finder, Found, SearchContext, register
from .scoring import found, prunable_params, to_mask, trained_dense


def l1_scores(net: Parent) -> dict[str, torch.Tensor]:
    """|θ| of every prunable weight of `net`: summed over a node's incoming weights by `to_mask`,
    that is the L1 norm of its filter.

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 1, 2), 2, 0, (2,))
    >>> _ = p.fc1.weight.data.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
    >>> l1_scores(p)["fc1.weight"].sum(1).tolist()
    [3.0, 3.5]
    """
    return {n: w.detach().abs() for n, w in prunable_params(net).items()}


@register
class L1Norm(Finder):
    name = "l1-norm"
    help = "Li et al. 2017: train the dense parent, keep the filters (units) of largest L1 norm, rewind to init"
    spaces = ("node",)  # a single weight's L1 norm is its magnitude: the weight space has `magnitude`
    scored = True
    has_search_cost = True  # it trains the dense parent
    shares_trained_work = True  # the seed's trained parent (see Finder.shares_trained_work)

    def find(self, ctx: SearchContext) -> Found:
        net, cost = trained_dense(ctx)
        mask, ranked = to_mask(ctx, l1_scores(net))
        return found(mask, cost, ranked, trained=net)
