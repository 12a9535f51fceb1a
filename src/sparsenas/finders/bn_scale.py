"""`bn-scale`: network slimming (Liu, Li, Shen, Huang, Yan & Zhang, ICCV 2017, "Learning Efficient
Convolutional Networks through Network Slimming").

Train the dense parent with the trial's own budget and data order plus an L1 penalty
λ·Σ|γ| on every BatchNorm scale γ (`bn_penalty`; the authors' code adds the subgradient λ·sign(γ) to
γ's gradient after the backward pass, and so does this), rank each channel by |γ|, keep the largest
and rewind the kept channels to θ0, so the ticket is trained exactly like its controls (the paper
fine-tunes the slimmed net instead; the run's starts compare the two).

A channel written by several BatchNorms (a residual stream: each block's last BN, and the
projection shortcut's) scores the mean of its |γ|, so that under `--allocation global` it is ranked
on the same scale as a channel with one BatchNorm. The paper prunes with one threshold over the
whole network: that is `--allocation global`; the default per-layer allocation prunes every layer
alike. λ defaults to 1e-4, the paper's value for VGGNet on CIFAR and its code's default; the paper
used 1e-5 for ResNets and DenseNets. With λ = 0 the parent is the plain trained parent that
`magnitude`, `imp` and `l1-norm` share. Every node group must have a BatchNorm scale to rank.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import SparsenasError
from ..measures import SearchCost
from ..models import Parent, TensorSlice
from ..train import train_population
from .base import Finder, FinderOptions, Found, SearchContext, register
from .scoring import flops_per_sample, found, shared_work, to_mask, trained_dense


def bn_scale_names(net: nn.Module) -> list[str]:
    """The names of `net`'s BatchNorm scales (the `weight` of every affine BatchNorm 1d/2d/3d).

    >>> bn_scale_names(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.BatchNorm2d(2, affine=False)))
    ['1.weight']
    """
    return [f"{n}.weight" for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]


def check_bn_groups(parent: Parent, model: str = "") -> None:
    """Refuse, in one line, a parent with a node group that no BatchNorm scale covers: bn-scale
    could not rank its channels.

    >>> from sparsenas.models import build_parent
    >>> check_bn_groups(build_parent("mlp", (1, 8, 8), 10, 0, (8,)), "mlp")
    Traceback (most recent call last):
    sparsenas.errors.SparsenasError: bn-scale ranks channels by their BatchNorm scale, but node group 'fc1' of parent 'mlp' has none; use l1-norm for this parent, or put a BatchNorm (affine) after that layer
    """
    scales = set(bn_scale_names(parent))
    for g in parent.node_groups():
        if not any(sl.tensor in scales for sl in g.producers):
            name = f" of parent '{model}'" if model else ""
            raise SparsenasError(
                f"bn-scale ranks channels by their BatchNorm scale, but node group '{g.name}'{name} has none; "
                "use l1-norm for this parent, or put a BatchNorm (affine) after that layer"
            )


def slimmed_parent(ctx: SearchContext[BnScaleOptions]) -> tuple[Parent, SearchCost]:
    """The parent trained with the L1 penalty on its BatchNorm scales (once per seed and λ, shared
    through `ctx.memo`); with λ = 0 the plain trained parent."""
    lam = ctx.options.bn_penalty
    if lam == 0.0:
        return trained_dense(ctx)
    key = ("bn-scale", lam)
    if key not in ctx.memo:
        start = time.perf_counter()
        net = copy.deepcopy(ctx.parent)
        params = dict(net.named_parameters())
        # The subgradient of λ|γ| is added to γ's gradient as the backward pass accumulates it. A
        # population of one trains its network's own parameters, so the hooks see every step.
        hooks = [params[n].register_hook(_l1_subgradient(params[n], lam)) for n in bn_scale_names(net)]
        try:
            with shared_work(ctx, f"bn-scale|{lam!r}"):
                result = train_population([net], ctx.data, ctx.train, data_seed=ctx.seed)[0]
        finally:
            for h in hooks:
                h.remove()
        cost = SearchCost(steps=result.steps, flops=3.0 * flops_per_sample(ctx) * result.samples, seconds=time.perf_counter() - start)
        ctx.memo[key] = (net, cost)
    return ctx.memo[key]


def scale_counts(parent: Parent) -> dict[str, torch.Tensor]:
    """For each BatchNorm scale tensor, how many BatchNorms scale each of its channels.

    A channel's bn-scale score is its mean |γ| over the BatchNorms that scale it (a residual stream
    has several): per layer the same ranking as their sum, and under --allocation global one scale
    with the channels that have a single BatchNorm, as the paper's one threshold over all γ. The
    count is per node group, set on the group's own entries: a BatchNorm over a concatenation scales
    channels of two groups, each with its own count.

    >>> from sparsenas.models import build_parent
    >>> c = scale_counts(build_parent("resnet20", (1, 8, 8), 10, 0, (2,))); c["bn1.weight"].tolist(), c["layer1.0.bn1.weight"].tolist()
    ([4.0, 4.0], [1.0, 1.0])
    """
    params = dict(parent.named_parameters())
    counts: dict[str, torch.Tensor] = {}
    for g, mine in zip(parent.node_groups(), _scale_slices(parent)):
        for sl in mine:
            count = counts.setdefault(sl.tensor, torch.ones_like(params[sl.tensor].detach()))
            count[sl.indices(torch.arange(g.size))] = len(mine)
    return counts


def _scale_slices(parent: Parent) -> list[list[TensorSlice]]:
    """Per node group (in `node_groups()` order), its slices of BatchNorm scales."""
    scales = set(bn_scale_names(parent))
    return [[sl for sl in g.producers if sl.tensor in scales] for g in parent.node_groups()]


def _l1_subgradient(gamma: torch.Tensor, lam: float):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad + lam * torch.sign(gamma.detach())

    return hook


@dataclass(frozen=True)
class BnScaleOptions(FinderOptions):
    """Network slimming's option: the strength λ of the L1 penalty on BatchNorm scales.

    >>> BnScaleOptions(bn_penalty=-1.0).validate()
    Traceback (most recent call last):
    sparsenas.errors.SparsenasError: --bn-penalty must be a finite number >= 0, got -1.0; e.g. --bn-penalty 1e-4 (the paper's VGG value) or 1e-5 (its ResNet value)
    """

    bn_penalty: float = field(
        default=1e-4, metadata={"help": "L1 penalty λ on BatchNorm scales while the parent trains (paper: 1e-4 VGG, 1e-5 ResNet; 0 = none)"}
    )

    def validate(self, in_run: bool = True) -> None:
        if not (self.bn_penalty >= 0.0 and self.bn_penalty < float("inf")):
            raise SparsenasError(
                f"--bn-penalty must be a finite number >= 0, got {self.bn_penalty}; "
                "e.g. --bn-penalty 1e-4 (the paper's VGG value) or 1e-5 (its ResNet value)"
            )


@register
class BnScale(Finder):
    name = "bn-scale"
    help = "network slimming (Liu et al. 2017): train the parent with an L1 penalty on BatchNorm scales (--bn-penalty), keep the largest |scale|, rewind to init"
    Options = BnScaleOptions
    spaces = ("node",)  # a scale belongs to a channel: there is no per-weight version of the idea
    scored = True
    has_search_cost = True  # it trains the parent
    shares_trained_work = True  # the seed's trained parent (see Finder.shares_trained_work)

    def check_parent(self, parent: Parent, model: str = "") -> None:
        check_bn_groups(parent, model)

    def key_facts(self, parent: Parent, allocation: str = "per-layer") -> dict[str, str]:
        # Until 2026-12 a BatchNorm spanning groups divided all its channels by the count of the last
        # group that holds it. A group's scores changed only by a factor where all its BatchNorm
        # slices had one old divisor: per layer the same ranking, so the same mask; under the global
        # threshold a factor other than 1 moves it. Only trials whose masks moved get another key.
        groups = [[sl.tensor for sl in mine] for mine in _scale_slices(parent)]
        old = {t: len(mine) for mine in groups for t in mine}  # the last group's count wins, as it did
        if allocation == "global":
            moved = any(old[t] != len(mine) for mine in groups for t in mine)
        else:
            moved = any(len({old[t] for t in mine}) > 1 for mine in groups)
        return {"bn_count": "per-group"} if moved else {}

    def find(self, ctx: SearchContext[BnScaleOptions]) -> Found:
        check_bn_groups(ctx.parent)
        net, cost = slimmed_parent(ctx)
        params = dict(net.named_parameters())
        scores = {n: params[n].detach().abs() / c for n, c in scale_counts(ctx.parent).items()}
        mask, ranked = to_mask(ctx, scores)
        return found(mask, cost, ranked, trained=net)  # the paper fine-tunes the slimmed parent
