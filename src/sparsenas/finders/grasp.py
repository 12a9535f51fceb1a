"""`grasp`: gradient signal preservation at init (Wang, Zhang & Grosse, ICLR 2020).

With g the gradient of the loss at θ0 (logits divided by a temperature of 200, as in the authors'
code) and H the Hessian, a weight's score is θ ⊙ Hg. The paper writes S(-θ) = -θ ⊙ Hg and removes
the weights with the largest S(-θ), so keeping the largest θ ⊙ Hg is the same rule: removing a
weight with a large θ ⊙ Hg would reduce the gradient flow the most. Scores can be negative, so
a node's score (sum of its incoming weights' scores) can be too. One batch of `score_samples`.
"""

from __future__ import annotations

import copy
import functools
import operator
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from ..models import Parent
from .base import Finder, FinderOptions, Found, SearchContext, register
from .scoring import GLOBAL_TOPK, find_on_batch, prunable_params

TEMPERATURE = 200.0


def grasp_scores(parent: Parent, x: torch.Tensor, y: torch.Tensor, temperature: float = TEMPERATURE) -> dict[str, torch.Tensor]:
    """θ ⊙ Hg for every prunable weight (higher = keep), by a Hessian-vector product.

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 2, 2), 2, 0, (3,))
    >>> s = grasp_scores(p, torch.ones(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])); tuple(s["out.weight"].shape)
    (2, 3)
    """
    net = copy.deepcopy(parent)
    net.eval()
    weights = prunable_params(net)
    ws = list(weights.values())
    g = [t.detach() for t in torch.autograd.grad(F.cross_entropy(net(x) / temperature, y), ws)]
    # Hg = ∂/∂θ (gᵀ ∇L(θ)) with g held fixed
    grad = torch.autograd.grad(F.cross_entropy(net(x) / temperature, y), ws, create_graph=True)
    z = functools.reduce(operator.add, ((gi * ti).sum() for gi, ti in zip(g, grad)))  # sum() without its 0
    hg = torch.autograd.grad(z, ws)
    return {n: (w * h).detach() for (n, w), h in zip(weights.items(), hg)}


@dataclass(frozen=True)
class GraspOptions(FinderOptions):
    """GraSP's options: the size of its one scoring batch.

    >>> GraspOptions().score_samples, GraspOptions.tiny().score_samples
    (256, 16)
    """

    score_samples: int = field(default=256, metadata={"help": "training samples in the scoring batch", "range": (1, 10**6)})

    @classmethod
    def tiny(cls) -> GraspOptions:
        return cls(score_samples=16)


@register
class Grasp(Finder):
    name = "grasp"
    help = "GraSP: keep the weights whose removal would most reduce gradient flow (θ ⊙ Hg at init, one batch)"
    Options = GraspOptions
    has_search_cost = True
    spaces = ("node", "weight")
    scored = True
    global_topk = GLOBAL_TOPK  # it ranks through `to_mask`

    def find(self, ctx: SearchContext[GraspOptions]) -> Found:
        # one gradient pass (3 forwards) and a Hessian-vector product (about twice that again)
        return find_on_batch(ctx, ctx.options.score_samples, grasp_scores, passes=9.0, topk=self.global_topk)
