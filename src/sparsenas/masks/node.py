"""Node masks: which hidden nodes of each group a sub-network keeps, and per-layer allocation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import SparsenasError
from ..models.base import NodeGroup, linear_chain_groups  # noqa: F401  (linear_chain_groups: the doctests use it)


@dataclass(frozen=True)
class NodeMask:
    """Kept node indices per node group, sorted ascending (group order as in `node_groups()`).

    >>> m = NodeMask(((0, 2), (1,))); m.kept_counts()
    (2, 1)
    """

    kept: tuple[tuple[int, ...], ...]

    def kept_counts(self) -> tuple[int, ...]:
        return tuple(len(k) for k in self.kept)

    def node_sparsity(self, groups: list[NodeGroup]) -> float:
        """Achieved fraction of hidden nodes removed, over all groups."""
        total = sum(g.size for g in groups)
        return 1.0 - sum(self.kept_counts()) / total

    def validate(self, groups: list[NodeGroup]) -> None:
        """Raise ValueError unless the mask fits `groups` (one non-empty sorted index list each).

        >>> NodeMask(((0, 2),)).validate([NodeGroup("a", 3, (), ())])
        """
        if len(self.kept) != len(groups):
            raise ValueError(f"mask has {len(self.kept)} groups, parent has {len(groups)}")
        for k, g in zip(self.kept, groups):
            if not k:
                raise ValueError(f"mask empties node group '{g.name}'")
            if list(k) != sorted(set(k)) or k[0] < 0 or k[-1] >= g.size:
                raise ValueError(f"mask of group '{g.name}' must be sorted unique indices in [0, {g.size})")


def check_sparsity(s: float) -> float:
    """`s` as a float if it is a valid sparsity in [0, 1), else a one-line `SparsenasError`.

    >>> check_sparsity(0.9)
    0.9
    """
    if not (isinstance(s, (int, float)) and 0.0 <= s < 1.0 and math.isfinite(s)):
        raise SparsenasError(f"sparsity must be in [0, 1), got {s!r}; e.g. --sparsities 0.5,0.8,0.9")
    return float(s)


def allocate(groups: list[NodeGroup], sparsity: float) -> tuple[int, ...]:
    """Per-layer allocation: each group keeps round((1-s)*width) nodes, at least 1.

    Rounds half up (not Python's banker's rounding), after rounding away float noise such as
    (1-0.95)*100 = 5.000000000000004.

    >>> from sparsenas.models import build_parent
    >>> allocate(build_parent("lenet-300-100", (1, 28, 28), 10, 0).node_groups(), 0.95)
    (15, 5)
    """
    s = check_sparsity(sparsity)
    return tuple(max(1, math.floor(round((1.0 - s) * g.size, 9) + 0.5)) for g in groups)


def allocate_total(groups: list[NodeGroup], total: int) -> tuple[int, ...]:
    """Exactly `total` kept nodes spread over the groups in proportion to their widths (largest
    remainder; at least 1 and at most its width per group): the per-layer allocation at a node count.

    >>> from sparsenas.models import build_parent
    >>> allocate_total(build_parent("lenet-300-100", (1, 28, 28), 10, 0).node_groups(), 101)
    (76, 25)
    """
    sizes = [g.size for g in groups]
    if not len(sizes) <= total <= sum(sizes):
        raise ValueError(f"a total of {total} nodes does not fit {len(sizes)} groups of widths {sizes}")
    share = [total * n / sum(sizes) for n in sizes]
    counts = [min(n, max(1, math.floor(x))) for n, x in zip(sizes, share)]
    # hand out (or take back) the difference by largest (smallest) remainder, within the bounds
    order = sorted(range(len(sizes)), key=lambda i: (-(share[i] - math.floor(share[i])), i))
    while sum(counts) != total:
        step = 1 if sum(counts) < total else -1
        for i in order if step > 0 else order[::-1]:
            if sum(counts) == total:
                break
            if 1 <= counts[i] + step <= sizes[i]:
                counts[i] += step
    return tuple(counts)


def dense_mask(groups: list[NodeGroup]) -> NodeMask:
    """The mask that keeps every node: the dense parent.

    >>> dense_mask([NodeGroup("a", 3, (), ())]).kept
    ((0, 1, 2),)
    """
    return NodeMask(tuple(tuple(range(g.size)) for g in groups))


def random_mask(groups: list[NodeGroup], counts: tuple[int, ...], generator: torch.Generator) -> NodeMask:
    """Keep `counts[i]` nodes of group i chosen uniformly at random by `generator`.

    >>> from sparsenas.models import build_parent
    >>> g = build_parent("mlp", (1, 8, 8), 10, 0, (8, 4)).node_groups()
    >>> random_mask(g, (2, 1), torch.Generator().manual_seed(0)).kept_counts()
    (2, 1)
    """
    kept = []
    for g, c in zip(groups, counts):
        idx = torch.randperm(g.size, generator=generator)[:c]
        kept.append(tuple(sorted(idx.tolist())))
    return NodeMask(tuple(kept))


def mask_from_scores(groups: list[NodeGroup], scores: list[torch.Tensor], counts: tuple[int, ...] | int) -> NodeMask:
    """Keep the highest-scoring nodes: `counts[i]` in group i (per-layer allocation), or, given one
    total count, the best node of every group and then the highest scores of the whole network
    (global allocation: no group is emptied). Ties: lower index (then earlier group) first.

    The one step every scoring finder shares, so a finder differs from another only in its scores.

    >>> g = [NodeGroup("a", 3, (), ()), NodeGroup("b", 2, (), ())]
    >>> mask_from_scores(g, [torch.tensor([0.1, 0.9, 0.5]), torch.tensor([0.2, 0.3])], (2, 1)).kept
    ((1, 2), (1,))
    >>> mask_from_scores(g, [torch.tensor([0.1, 0.9, 0.5]), torch.tensor([0.2, 0.3])], 3).kept
    ((1, 2), (1,))
    """
    for g, s in zip(groups, scores):
        if s.shape != (g.size,):
            raise ValueError(f"scores of group '{g.name}' have shape {tuple(s.shape)}, expected ({g.size},)")
    clean = [torch.nan_to_num(s.detach().double().cpu(), nan=-math.inf) for s in scores]
    if isinstance(counts, int):
        # every group keeps its best node; the rest of the budget goes to the best scores anywhere
        firsts = [int(torch.sort(-s, stable=True).indices[0]) for s in clean]
        flat = torch.cat(clean)
        offsets = [sum(g.size for g in groups[:i]) for i in range(len(groups))]
        taken = torch.zeros(flat.numel(), dtype=torch.bool)
        for o, f in zip(offsets, firsts):
            taken[o + f] = True
        # the groups' best nodes are taken already: rank the others (a taken node sorts last)
        rest = torch.sort(-torch.where(taken, torch.tensor(-math.inf, dtype=flat.dtype), flat), stable=True).indices
        taken[rest[: max(0, counts - len(groups))]] = True
        return NodeMask(tuple(tuple(torch.nonzero(taken[o : o + g.size]).flatten().tolist()) for o, g in zip(offsets, groups)))
    kept = []
    for s, c in zip(clean, counts):
        # stable sort on -score keeps the lower index first among equal scores
        order = torch.sort(-s, stable=True).indices[:c]
        kept.append(tuple(sorted(order.tolist())))
    return NodeMask(tuple(kept))


def global_node_count(groups: list[NodeGroup], sparsity: float) -> int:
    """Global allocation: hidden nodes kept over the whole network, at least one per group.

    It rounds half up like `allocate`, not like the papers' weight-space count (`weight.global_count`
    "floor"): no paper's code ranks nodes globally (this rule, each group's best node first, is ours),
    so there is no reference count to match, and the same rounding as per-layer allocation keeps the
    two allocations' totals alike. Changing it would only re-key stored node-space trials.

    >>> from sparsenas.models import build_parent
    >>> global_node_count(build_parent("lenet-300-100", (1, 28, 28), 10, 0).node_groups(), 0.95)
    20
    """
    s = check_sparsity(sparsity)
    return max(len(groups), math.floor(round((1.0 - s) * sum(g.size for g in groups), 9) + 0.5))


def node_scores(groups: list[NodeGroup], weight_scores: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Node scores from weight scores: a node's score is the sum of the scores of its incoming
    weights (the rows of its producing weight tensor; biases are not scored).

    Summing incoming scores is the aggregation SynFlow's conservation law makes natural (a node's
    incoming and outgoing synaptic saliencies are equal); for SNIP, GraSP and magnitude it is the
    usual filter-level aggregation.

    >>> g = linear_chain_groups(["fc1", "out"], [2])
    >>> node_scores(g, {"fc1.weight": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "out.weight": torch.ones(1, 2)})[0].tolist()
    [3.0, 7.0]
    """
    out = []
    for g in groups:
        rows = [sl for sl in g.producers if sl.tensor in weight_scores]
        if not rows:
            raise ValueError(f"node group '{g.name}' has no scored producer weight")
        total = torch.zeros(g.size, dtype=torch.float64)
        for sl in rows:
            t = weight_scores[sl.tensor].detach().double().cpu().movedim(sl.dim, 0).narrow(0, sl.offset, g.size * sl.block)
            total += t.reshape(g.size, sl.block, -1).sum((1, 2))  # summed as always: the same scores to the last bit
        out.append(total)
    return out
