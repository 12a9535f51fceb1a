"""`imp`: iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

Round 0 trains the dense parent; each later round prunes `imp_rate` of the remaining weights of
every layer by magnitude (half that rate for the classifier layer, as Frankle & Carbin do for
LeNet; in the node space `imp_rate` of every group's remaining nodes by incoming weight norm), rewinds
the survivors to θ0 (or to θ_k, the dense parent after `rewind_steps` steps) and trains again. With
`--allocation global` a round removes `imp_rate` of all remaining weights, ranked together.

One chain of rounds per seed is shared by all the sparsities of a run (it lives in the seed's
memo), and it never depends on which sparsities were asked for: the trial at sparsity s takes the
last round below s and prunes it once more, with the round's rates scaled down to land on s exactly.
Asking for more sparsities therefore traces the whole curve for the cost of one chain. The search
cost of a trial is every training of the chain up to the round it pruned (and the k rewind steps).

With `rewind_steps` > 0 the ticket starts from θ_k restricted to its mask and is trained the full
budget, like every trial; the controls start from θ0. The `reinit` check separates the two effects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import SparsenasError
from ..masks import (
    NodeMask,
    WeightMask,
    allocate,
    dense_mask,
    global_count,
    global_node_count,
    mask_from_scores,
    node_scores,
    weight_mask_from_counts,
)
from ..measures import SearchCost
from ..models import Parent
from .base import Finder, FinderOptions, Found, Mask, SearchContext, register
from .scoring import add_costs, found, prunable_params, shared_work, train_masked, trained_dense


@dataclass
class Chain:
    """IMP's rounds so far: round r's mask, its trained net, and the cost of training up to it."""

    init: dict[str, torch.Tensor] | None  # θ_k (None: θ0)
    masks: list[Mask] = field(default_factory=list)
    trained: list[Parent] = field(default_factory=list)
    costs: list[SearchCost] = field(default_factory=list)  # cumulative


def _sparsity(ctx: SearchContext, mask: Mask) -> float:
    return mask.sparsity() if isinstance(mask, WeightMask) else mask.node_sparsity(ctx.parent.node_groups())


def _scores(ctx: SearchContext, net: Parent, mask: Mask | None) -> dict[str, torch.Tensor] | list[torch.Tensor]:
    """Magnitude scores of `net`'s units (|θ|, or a node's incoming squared norm), with every unit
    `mask` has removed ranked last (-inf)."""
    weights = {n: w.detach().cpu() for n, w in prunable_params(net).items()}
    if ctx.space == "weight":
        assert mask is None or isinstance(mask, WeightMask)  # a chain's masks are of its space
        return {
            n: w.abs() if mask is None else torch.where(mask.tensors[n], w.abs(), torch.full_like(w, -math.inf)) for n, w in weights.items()
        }
    ns = node_scores(ctx.parent.node_groups(), {n: w**2 for n, w in weights.items()})
    if mask is None:
        return ns
    assert isinstance(mask, NodeMask)
    return [torch.full_like(s, -math.inf).index_copy(0, torch.tensor(k), s[list(k)]) for s, k in zip(ns, mask.kept)]


def _select(ctx: SearchContext, scores, counts: tuple[int, ...] | int) -> Mask:
    if isinstance(scores, dict):
        return weight_mask_from_counts(scores, counts)
    return mask_from_scores(ctx.parent.node_groups(), scores, counts)


def _round_counts(ctx: SearchContext[ImpOptions], kept: tuple[int, ...], scale: float) -> tuple[int, ...] | int:
    """Counts after one round at `scale` x the rates (scale 1: a canonical round)."""
    if ctx.allocation == "global":
        return max(1, _half_up(sum(kept) * (1.0 - ctx.options.imp_rate * scale)))
    return _layer_round_counts(ctx, kept, scale)


def _layer_round_counts(ctx: SearchContext[ImpOptions], kept: tuple[int, ...], scale: float) -> tuple[int, ...]:
    """Per-layer counts after one round at `scale` x the rates."""
    rate = ctx.options.imp_rate * scale
    rates = [rate] * len(kept)
    if ctx.space == "weight":
        rates[-1] = rate / 2  # the classifier layer is pruned at half the rate
    return tuple(max(1, _half_up(k * (1.0 - r))) for k, r in zip(kept, rates))


def _half_up(x: float) -> int:
    # rounds half up, after float noise, like every allocation in sparsenas (not banker's rounding)
    return math.floor(round(x, 9) + 0.5)


def _target_counts(ctx: SearchContext[ImpOptions], kept: tuple[int, ...]) -> tuple[int, ...] | int:
    """Counts that land exactly on the target sparsity from a round with counts `kept`."""
    groups = ctx.parent.node_groups()
    if ctx.space == "node":
        if ctx.allocation == "global":
            return global_node_count(groups, ctx.sparsity)
        # equal rates per group: the per-layer allocation, never above what the round kept (rounding
        # in earlier rounds may have left a group below its share; pruned nodes never come back)
        return tuple(min(a, k) for a, k in zip(allocate(groups, ctx.sparsity), kept))
    sizes = tuple(p.numel() for p in prunable_params(ctx.parent).values())
    target = global_count(sizes, ctx.sparsity)
    if ctx.allocation == "global":
        return target
    # per-layer rates differ (the classifier's is half): scale them all until the total lands on target
    lo, hi = 0.0, 1.0 / ctx.options.imp_rate
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if sum(_layer_round_counts(ctx, kept, mid)) <= target else (mid, hi)
    return _layer_round_counts(ctx, kept, hi)


def _chain_key(ctx: SearchContext[ImpOptions]) -> tuple:
    return ("imp", ctx.space, ctx.allocation, ctx.options.imp_rate, ctx.options.rewind_steps)


def _chain(ctx: SearchContext[ImpOptions]) -> Chain:
    key = _chain_key(ctx)
    if key not in ctx.memo:
        k = ctx.options.rewind_steps
        if k > 0:
            with shared_work(ctx, f"{key}|rewind"):
                theta_k, _, rewind_cost = train_masked(ctx, None, max_steps=k)
            chain = Chain({n: t.detach().clone() for n, t in theta_k.state_dict().items()})
            with shared_work(ctx, f"{key}|round 0"):
                net, _, cost = train_masked(ctx, None, init=chain.init)
            cost = add_costs(rewind_cost, cost)
        else:
            chain = Chain(None)
            net, cost = trained_dense(ctx)
        groups = ctx.parent.node_groups()
        dense = (
            dense_mask(groups)
            if ctx.space == "node"
            else WeightMask({n: torch.ones_like(p, dtype=torch.bool, device="cpu") for n, p in prunable_params(ctx.parent).items()})
        )
        chain.masks.append(dense)
        chain.trained.append(net)
        chain.costs.append(cost)
        ctx.memo[key] = chain
    return ctx.memo[key]


@dataclass(frozen=True)
class ImpOptions(FinderOptions):
    """IMP's options: the pruning rate per round and the rewind point.

    >>> ImpOptions(imp_rate=1.5).validate()
    Traceback (most recent call last):
    sparsenas.errors.SparsenasError: --imp-rate must be in (0, 1), got 1.5; e.g. --imp-rate 0.2
    """

    imp_rate: float = field(
        default=0.2, metadata={"help": "fraction of the remaining weights (nodes) pruned per round (the classifier layer: half)"}
    )
    rewind_steps: int = field(
        default=0, metadata={"help": "rewind survivors to the dense parent after this many steps (0 = to init)", "range": (0, 10**7)}
    )

    def validate(self, in_run: bool = True) -> None:
        if not 0.0 < self.imp_rate < 1.0:
            raise SparsenasError(f"--imp-rate must be in (0, 1), got {self.imp_rate}; e.g. --imp-rate 0.2")

    @classmethod
    def tiny(cls) -> ImpOptions:
        return cls(imp_rate=0.5, rewind_steps=0)  # half per round: a couple of rounds reach any test sparsity


@register
class IMP(Finder):
    name = "imp"
    help = "iterative magnitude pruning: --imp-rate per round (classifier half), rewind to init or --rewind-steps; one chain per seed"
    Options = ImpOptions
    has_search_cost = True
    shares_trained_work = True  # the seed's trained parent (see Finder.shares_trained_work)
    spaces = ("node", "weight")
    scored = True

    def find(self, ctx: SearchContext[ImpOptions]) -> Found:
        chain = _chain(ctx)
        # extend the canonical chain until its next round would reach the target
        while True:
            last = chain.masks[-1]
            scores = _scores(ctx, chain.trained[-1], last)
            nxt = _select(ctx, scores, _round_counts(ctx, last.kept_counts(), 1.0))
            if _sparsity(ctx, nxt) >= ctx.sparsity - 1e-12 or sum(nxt.kept_counts()) >= sum(last.kept_counts()):
                break
            with shared_work(ctx, f"{_chain_key(ctx)}|round {len(chain.masks)}"):  # whichever sparsity extends the chain
                net, _, cost = train_masked(ctx, nxt, init=chain.init)
            chain.masks.append(nxt)
            chain.trained.append(net)
            chain.costs.append(add_costs(chain.costs[-1], cost))
        r = max(i for i, m in enumerate(chain.masks) if _sparsity(ctx, m) < ctx.sparsity - 1e-12) if ctx.sparsity > 0 else 0
        scores = _scores(ctx, chain.trained[r], chain.masks[r])
        mask = _select(ctx, scores, _target_counts(ctx, chain.masks[r].kept_counts()))
        if isinstance(mask, NodeMask):
            mask.validate(ctx.parent.node_groups())
        # the inversion check ranks by round 0's scores (the trained dense parent's magnitudes):
        # later rounds' scores exist only for the units still kept
        return found(mask, chain.costs[r], _scores(ctx, chain.trained[0], None), chain.init, trained=chain.trained[r])
