"""What scoring finders share: the score-to-mask step in either space, the scoring batch, masked
training for finders that train (magnitude, IMP), and proxy scoring of node-mask candidates.

A finder computes weight scores (higher = keep) and hands them to `to_mask`; in the weight space they
are ranked directly, in the node space a node's score is the sum of its incoming weights' scores
(`masks.node_scores`). So finders differ only in their scores, and the controls go through the
same allocation code as the finders they control.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..masks import (
    NodeMask,
    WeightMask,
    allocate,
    compact,
    count_flops,
    global_node_count,
    mask_from_scores,
    node_scores,
    weight_mask_from_scores,
    weight_masks,
)
from ..measures import SearchCost
from ..models import Parent
from ..runtime import seeded
from ..train import Population, TrainResult, total_steps, train_population
from .base import Found, Mask, SearchContext

CANDIDATE_BATCH = 32  # node-mask candidates scored (and proxy-trained) together; part of the protocol
# The global weight-space count of the papers' code: prune int(s*N), as Tanaka et al.'s code does for
# SynFlow and for the SNIP, GraSP and magnitude baselines it compares with (GraSP's own code too).
# Those four finders declare it as their `Finder.global_topk` and pass it to `to_mask`; it enters
# their global weight trials' keys where it changes the count. The node space keeps its own rounding.
GLOBAL_TOPK = "floor"


def to_mask(
    ctx: SearchContext, scores: dict[str, torch.Tensor], alive: Mask | None = None, topk: str = "round"
) -> tuple[Mask, dict[str, torch.Tensor] | list[torch.Tensor]]:
    """The mask at `ctx.sparsity` in `ctx.space` from weight scores; also the scores it ranked.

    `topk` is the calling finder's global weight-space count (its `Finder.global_topk`, which its
    trial keys carry): a finder of a user's that never declared one keeps the count, the masks and
    the keys it always had.

    `alive` (an earlier round's mask, for iterative finders) ranks every unit it has removed last,
    at the unit's own level: a pruned weight in the weight space, a pruned node in the node space
    (node scores are summed from the raw weight scores first, so a kept node is never penalized for
    the pruned nodes it reads from).

    >>> from sparsenas.data import load_dataset; from sparsenas.models import build_parent
    >>> from sparsenas.train import TrainSpec; from sparsenas.finders.options import FinderOptions
    >>> ds = load_dataset("digits", limit=32); p = build_parent("mlp", ds.input_shape, 10, 0, (8, 4))
    >>> ctx = SearchContext(p, ds, TrainSpec(), 0.5, 0, torch.Generator(), FinderOptions())
    >>> mask, _ = to_mask(ctx, {n: w.abs() for n, w in p.named_parameters() if n in p.prunable_weights()})
    >>> mask.kept_counts()
    (4, 2)
    """
    if ctx.space == "weight":
        if isinstance(alive, WeightMask):
            scores = {n: torch.where(alive.tensors[n].to(s.device), s, torch.full_like(s, -math.inf)) for n, s in scores.items()}
        return weight_mask_from_scores(scores, ctx.sparsity, ctx.allocation, topk), scores
    groups = ctx.parent.node_groups()
    ns = node_scores(groups, scores)
    if isinstance(alive, NodeMask):
        ns = [torch.full_like(s, -math.inf).index_copy(0, torch.tensor(k), s[list(k)]) for s, k in zip(ns, alive.kept)]
    counts = allocate(groups, ctx.sparsity) if ctx.allocation == "per-layer" else global_node_count(groups, ctx.sparsity)
    return mask_from_scores(groups, ns, counts), ns


def prunable_params(model: Parent) -> dict[str, torch.nn.Parameter]:
    """The prunable weights of `model` by name, in layer order."""
    params = dict(model.named_parameters())
    return {n: params[n] for n in model.prunable_weights()}


def score_batch(ctx: SearchContext, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` training samples drawn by the trial seed: SNIP and GraSP of one seed score the same batch.

    >>> from sparsenas.data import load_dataset; from sparsenas.models import build_parent
    >>> from sparsenas.train import TrainSpec; from sparsenas.finders.options import FinderOptions
    >>> ds = load_dataset("digits", limit=64); p = build_parent("mlp", ds.input_shape, 10, 0)
    >>> x, y = score_batch(SearchContext(p, ds, TrainSpec(), 0.5, 0, torch.Generator(), FinderOptions()), 16); tuple(x.shape)
    (16, 1, 8, 8)
    """
    train = ctx.data.train
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx.seed))[: min(n, len(train))]
    idx = idx.to(train.x.device)
    return train.x[idx], train.y[idx]


def flops_per_sample(ctx: SearchContext, model: Parent | None = None) -> int:
    """Forward FLOPs per sample of `model` (default: the dense parent)."""
    return count_flops(model if model is not None else ctx.parent, ctx.data.input_shape)


def weight_masks_of(parent: Parent, mask: Mask) -> dict[str, torch.Tensor]:
    """0/1 float masks of the parent's tensors for a node or a weight mask."""
    return weight_masks(parent, mask) if isinstance(mask, NodeMask) else mask.float_masks()


def train_masked(
    ctx: SearchContext, mask: Mask | None, init: dict[str, torch.Tensor] | None = None, max_steps: int | None = None
) -> tuple[Parent, TrainResult, SearchCost]:
    """Train the parent (from `init`, default θ0) with `mask` applied, at full size, with the trial's
    budget and data order; return the trained full-size net, its result and what it cost.

    Used by finders that train before they prune (magnitude, IMP): pruning needs the trained values
    of every weight at the parent's indices.
    """
    start = time.perf_counter()
    net = copy.deepcopy(ctx.parent)
    if init is not None:
        net.load_state_dict(init)
    masks = None if mask is None else [weight_masks_of(ctx.parent, mask)]
    result = train_population([net], ctx.data, ctx.train, data_seed=ctx.seed, max_steps=max_steps, masks=masks)[0]
    cost = SearchCost(
        steps=result.steps,
        flops=3.0 * flops_per_sample(ctx) * result.samples,
        seconds=time.perf_counter() - start,
    )
    return net, result, cost


def shared_work(ctx: SearchContext, name: str) -> contextlib.AbstractContextManager[None]:
    """torch's global generators seeded for work that one seed's finders share (`name`: the trained
    dense parent, IMP's round r): a dropout net then trains it to the same numbers whichever trial of
    the seed asks first, as the memo promises (the finder's own seed would differ by trial).

    >>> from sparsenas.data import load_dataset; from sparsenas.models import build_parent
    >>> ds = load_dataset("digits", limit=32); ctx = SearchContext(build_parent("mlp", ds.input_shape, 10, 0), ds, None, 0.5, 3, None, {})
    >>> with shared_work(ctx, "x"): a = torch.rand(1)
    >>> with shared_work(ctx, "x"): b = torch.rand(1)
    >>> bool(a == b)
    True
    """
    digest = hashlib.sha256(f"{ctx.seed}|shared|{name}".encode()).hexdigest()
    return seeded(int(digest[:15], 16), ctx.data.train.x.device)


@dataclass(frozen=True)
class StoredDense:
    """The seed's dense trial as the run's store holds it: its trained state dict and its training's
    wall seconds. Put in a seed's memo under `STORED_DENSE` by the runner where that
    trial trained exactly as `trained_dense` would (a parent whose training draws nothing from torch's
    generators, the same budget and data order), so the seed's finders load it instead of training
    the parent a second time."""

    state: dict[str, torch.Tensor]
    seconds: float


STORED_DENSE = "stored_dense"  # the memo key of a seed's `StoredDense`


def trained_dense(ctx: SearchContext) -> tuple[Parent, SearchCost]:
    """The dense parent trained with the trial budget (once per seed, shared through `ctx.memo`).

    Where the memo holds the seed's stored dense trial (`StoredDense`), its weights are the answer:
    the same numbers bit for bit (tests/test_stored_dense.py), charged as that training cost.
    """
    if "trained_dense" not in ctx.memo:
        stored = ctx.memo.get(STORED_DENSE)
        if stored is not None:
            net = copy.deepcopy(ctx.parent)
            net.load_state_dict(stored.state)
            # what train_masked would charge for the whole budget (a stored dense trial that
            # diverged is never offered): every step, every sample of every epoch
            samples = ctx.train.epochs * len(ctx.data.train)
            steps = total_steps(ctx.train, len(ctx.data.train))
            cost = SearchCost(steps=steps, flops=3.0 * flops_per_sample(ctx) * samples, seconds=stored.seconds)
        else:
            with shared_work(ctx, "trained_dense"):
                net, _, cost = train_masked(ctx, None)
        ctx.memo["trained_dense"] = (net, cost)
    return ctx.memo["trained_dense"]


def add_costs(*costs: SearchCost) -> SearchCost:
    """The sum of search costs.

    >>> add_costs(SearchCost(1, 2, 3.0, 4.0), SearchCost(0, 1, 1.0, 1.0))
    SearchCost(candidates=1, steps=3, flops=4.0, seconds=5.0)
    """
    return SearchCost(*(sum(getattr(c, f) for c in costs) for f in ("candidates", "steps", "flops", "seconds")))


def loss_rank(loss: float, index: int) -> tuple[float, int]:
    """Sort key for proxy losses: lower first, a non-finite loss (diverged) last, earlier on ties.

    >>> sorted(range(3), key=lambda i: loss_rank([float("nan"), 2.0, 1.0][i], i))
    [2, 1, 0]
    """
    return (loss if math.isfinite(loss) else math.inf, index)


def proxy_losses(ctx: SearchContext, candidates: Sequence[NodeMask], steps: int) -> tuple[list[float], SearchCost]:
    """Validation loss of each node-mask candidate (θ0 on its nodes), at init (`steps` = 0) or after
    `steps` training steps on the seed's data order; candidates go through in populations of
    `CANDIDATE_BATCH`, a protocol constant (a runtime cap must not decide a near-tie)."""
    losses, _, cost = proxy_scores(ctx, candidates, steps)
    return losses, cost


def proxy_scores(ctx: SearchContext, candidates: Sequence[NodeMask], steps: int) -> tuple[list[float], list[float], SearchCost]:
    """`proxy_losses` with each candidate's validation accuracy beside its loss."""
    start = time.perf_counter()
    losses: list[float] = []
    accs: list[float] = []
    flops, spent = 0.0, 0
    for i in range(0, len(candidates), CANDIDATE_BATCH):
        chunk = candidates[i : i + CANDIDATE_BATCH]
        # one population per shape: per-layer allocation gives one shape, global allocation several
        shapes: dict[tuple[int, ...], list[int]] = {}
        for j, c in enumerate(chunk):
            shapes.setdefault(c.kept_counts(), []).append(j)
        out = [0.0] * len(chunk)
        out_acc = [0.0] * len(chunk)
        for rows in shapes.values():
            nets = [compact(ctx.parent, chunk[j]) for j in rows]  # copies: θ0 on the candidates' nodes
            per_sample = count_flops(nets[0], ctx.data.input_shape)
            if steps > 0:
                for r in train_population(nets, ctx.data, ctx.train, data_seed=ctx.seed, max_steps=steps):
                    spent += r.steps  # fewer than `steps` when the whole budget is shorter
                    flops += 3.0 * per_sample * r.samples  # forward + backward ~ 3 forwards
            val_loss, val_acc = Population(nets, ctx.train).evaluate(ctx.data.val)
            for j, v, a in zip(rows, val_loss, val_acc):
                out[j], out_acc[j] = v, a
            flops += per_sample * len(ctx.data.val) * len(nets)
        losses += out
        accs += out_acc
    return losses, accs, SearchCost(candidates=len(candidates), steps=spent, flops=flops, seconds=time.perf_counter() - start)


def find_on_batch(
    ctx: SearchContext,
    samples: int,
    score: Callable[[Parent, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
    passes: float,
    topk: str = "round",
) -> Found:
    """A pruning-at-init finder's whole search: `score` θ0 on the seed's scoring batch of `samples`,
    rank, charge `passes` forward-equivalents per sample (a gradient: 3; a Hessian-vector product on top: 9)."""
    start = time.perf_counter()
    x, y = score_batch(ctx, samples)
    mask, ranked = to_mask(ctx, score(ctx.parent, x, y), topk=topk)
    cost = SearchCost(flops=passes * flops_per_sample(ctx) * len(y), seconds=time.perf_counter() - start)
    return found(mask, cost, ranked)


def found(
    mask: Mask,
    cost: SearchCost,
    scores: dict[str, torch.Tensor] | list[torch.Tensor] | None = None,
    init: dict[str, torch.Tensor] | None = None,
    trained: Parent | None = None,
) -> Found:
    """A `Found` whose scores are detached CPU copies (they are kept only for the inversion check);
    `trained` is the net the finder ranked, kept (its state, not a copy) for the finetune start."""
    if isinstance(scores, dict):
        scores = {n: s.detach().cpu() for n, s in scores.items()}
    elif scores is not None:
        scores = [s.detach().cpu() for s in scores]
    return Found(mask, cost, scores, init, None if trained is None else trained.state_dict())


__all__ = [
    "CANDIDATE_BATCH",
    "GLOBAL_TOPK",
    "STORED_DENSE",
    "StoredDense",
    "add_costs",
    "find_on_batch",
    "flops_per_sample",
    "found",
    "loss_rank",
    "prunable_params",
    "proxy_losses",
    "proxy_scores",
    "score_batch",
    "shared_work",
    "to_mask",
    "train_masked",
    "trained_dense",
    "weight_masks_of",
]
