"""`synflow`: iterative synaptic flow pruning, data-free (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020).

Every parameter is replaced by its absolute value, the input by ones (shape (1, *input)), and
R = 1ᵀ f(1) is the total "synaptic flow" through the network; a weight's score is |θ ⊙ ∂R/∂θ|. The
mask is built in `synflow_iterations` rounds (100 by default, as in the paper), round k pruning to
sparsity 1 - (1-s)^(k/n) (the paper's exponential schedule) with the previous rounds' mask applied,
so a layer that is about to be emptied gains score and survives. With global allocation in the
weight space each round keeps the authors' count (prune int(s·N); `scoring.GLOBAL_TOPK`): rounding
instead moved one weight now and then, and over 100 rounds the kept set drifted from theirs (Jaccard
0.95 at density 0.01 and 0.88 at 0.001 on LeNet-300-100). The inversion check ranks by the
first round's scores (SynFlow on the unpruned parent): later rounds' scores are only defined for the
units still kept. Computed in float64: R spans many
orders of magnitude. Node space: a node scores the sum of its incoming weights' scores (SynFlow's
conservation law makes this equal to its outgoing sum), and whole nodes are pruned each round.

BatchNorm, as the authors' code handles it (Synaptic-Flow `SynFlow.score`, run by `prune_loop` with
the model in eval mode): the network is scored in eval mode, so BatchNorm is the fixed affine map of
its running statistics, and every tensor of the state, buffers included, is replaced by its
absolute value. At θ0 (running mean 0, variance 1, scale 1, shift 0) each BatchNorm is the identity
up to its eps, so flow passes through it unchanged; its own parameters are never pruned.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import torch

from ..masks import global_count
from ..measures import SearchCost
from ..models import Parent
from .base import Finder, FinderOptions, Found, Mask, SearchContext, register
from .scoring import GLOBAL_TOPK, flops_per_sample, found, prunable_params, to_mask, weight_masks_of


def synflow_scores(parent: Parent, input_shape: tuple[int, ...], masks: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """|θ ⊙ ∂R/∂θ| for every prunable weight of the linearized network (|θ| times `masks`), in float64.

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 2, 2), 2, 0, (3,))
    >>> s = synflow_scores(p, (1, 2, 2)); tuple(s["fc1.weight"].shape), bool((s["fc1.weight"] >= 0).all())
    ((3, 4), True)
    """
    net = copy.deepcopy(parent).double().eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.abs_()
            if masks is not None and name in masks:
                p.mul_(masks[name].to(p.device, p.dtype))
        for b in net.buffers():  # the authors linearize the whole state_dict: BatchNorm's statistics too
            if b.is_floating_point():
                b.abs_()
    weights = prunable_params(net)
    device = next(net.parameters()).device
    r = net(torch.ones(1, *input_shape, dtype=torch.float64, device=device)).sum()
    grads = torch.autograd.grad(r, list(weights.values()))
    return {n: (g * w).abs().detach() for (n, w), g in zip(weights.items(), grads)}


@dataclass(frozen=True)
class SynflowOptions(FinderOptions):
    """SynFlow's options: the number of pruning rounds.

    >>> SynflowOptions().synflow_iterations, SynflowOptions.tiny().synflow_iterations
    (100, 3)
    """

    synflow_iterations: int = field(
        default=100, metadata={"help": "pruning rounds (exponential schedule)", "range": (1, 10_000), "above": "the paper uses 100 rounds"}
    )

    @classmethod
    def tiny(cls) -> SynflowOptions:
        return cls(synflow_iterations=3)


@register
class Synflow(Finder):
    name = "synflow"
    help = "SynFlow: iterative, data-free; keep the weights carrying the most synaptic flow (|θ ⊙ ∂R/∂θ|, 100 rounds)"
    Options = SynflowOptions
    has_search_cost = True
    spaces = ("node", "weight")
    scored = True
    global_topk = GLOBAL_TOPK  # it ranks through `to_mask`

    def find(self, ctx: SearchContext[SynflowOptions]) -> Found:
        start = time.perf_counter()
        n = ctx.options.synflow_iterations
        mask: Mask | None = None
        first: dict[str, torch.Tensor] | list[torch.Tensor] | None = None
        for k in range(1, n + 1):
            masks = None if mask is None else weight_masks_of(ctx.parent, mask)
            scores = synflow_scores(ctx.parent, ctx.data.input_shape, masks)
            # what an earlier round pruned stays pruned, even where its score ties a kept unit's.
            # Round k's sparsity is the authors' float expression (`prune_loop`: density d ** (k/n),
            # pruning int((1 - d ** (k/n)) * N) with d = 1 - s), so every round keeps their count
            mask, ranked = to_mask(_at_sparsity(ctx, 1.0 - (1.0 - ctx.sparsity) ** (k / n)), scores, alive=mask, topk=self.global_topk)
            if first is None:
                first = ranked  # the one-shot scores of the unpruned parent: what the inversion check ranks
        assert mask is not None  # synflow_iterations >= 1 (its declared range)
        cost = SearchCost(steps=0, flops=3.0 * flops_per_sample(ctx) * n, seconds=time.perf_counter() - start)
        return found(mask, cost, first)

    def topk_changes_mask(self, prunable: int, sparsity: float, options: SynflowOptions) -> bool:
        """True if any of the rounds keeps another count under the authors' rule than under rounding:
        one round's difference changes every later round's scores.

        >>> Synflow().topk_changes_mask(50200, 0.99, SynflowOptions())
        True
        """
        n = options.synflow_iterations
        rounds = (1.0 - (1.0 - sparsity) ** (k / n) for k in range(1, n + 1))
        return any(global_count((prunable,), s, "round") != global_count((prunable,), s, self.global_topk) for s in rounds)


def _at_sparsity(ctx: SearchContext, sparsity: float) -> SearchContext:
    return dataclasses.replace(ctx, sparsity=sparsity)
