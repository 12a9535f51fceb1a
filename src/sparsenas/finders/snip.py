"""`snip`: connection sensitivity at init (Lee, Ajanthan & Torr, ICLR 2019).

A weight's score is |∂L/∂θ · θ| at θ0 on one batch of `score_samples` training samples (the same
batch for every finder of a seed): the first-order change of the loss if the weight were removed.
Node space: a node scores the sum of its incoming weights' scores.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from ..models import Parent
from .base import Finder, FinderOptions, Found, SearchContext, register
from .scoring import GLOBAL_TOPK, find_on_batch, prunable_params


def snip_scores(parent: Parent, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """|g ⊙ θ| for every prunable weight, g the gradient of the mean cross-entropy on (x, y).

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 2, 2), 2, 0, (3,))
    >>> s = snip_scores(p, torch.ones(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])); sorted(s), tuple(s["fc1.weight"].shape)
    (['fc1.weight', 'out.weight'], (3, 4))
    """
    net = copy.deepcopy(parent)
    net.eval()  # dropout off: the score is a property of θ0, not of one dropout draw
    weights = prunable_params(net)
    loss = F.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {n: (g * w).abs().detach() for (n, w), g in zip(weights.items(), grads)}


@dataclass(frozen=True)
class SnipOptions(FinderOptions):
    """SNIP's options: the size of its one scoring batch.

    >>> SnipOptions().score_samples, SnipOptions.tiny().score_samples
    (256, 16)
    """

    score_samples: int = field(default=256, metadata={"help": "training samples in the scoring batch", "range": (1, 10**6)})

    @classmethod
    def tiny(cls) -> SnipOptions:
        return cls(score_samples=16)


@register
class Snip(Finder):
    name = "snip"
    help = "SNIP: keep the largest |gradient x weight| at init on one batch (--score-samples)"
    Options = SnipOptions
    has_search_cost = True
    spaces = ("node", "weight")
    scored = True
    global_topk = GLOBAL_TOPK  # it ranks through `to_mask`

    def find(self, ctx: SearchContext[SnipOptions]) -> Found:
        return find_on_batch(ctx, ctx.options.score_samples, snip_scores, passes=3.0, topk=self.global_topk)
