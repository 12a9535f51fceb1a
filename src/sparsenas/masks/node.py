"""Node masks: which hidden nodes of each group a sub-network keeps, and per-layer allocation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import SparsenasError
from ..models.base import NodeGroup


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
    """`s` as a float if it is a valid node sparsity in [0, 1), else a one-line `SparsenasError`.

    >>> check_sparsity(0.9)
    0.9
    """
    if not (isinstance(s, (int, float)) and 0.0 <= s < 1.0 and math.isfinite(s)):
        raise SparsenasError(f"node sparsity must be in [0, 1), got {s!r}; e.g. --sparsities 0.5,0.8,0.9")
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


def mask_from_scores(groups: list[NodeGroup], scores: list[torch.Tensor], counts: tuple[int, ...]) -> NodeMask:
    """Keep the `counts[i]` highest-scoring nodes of each group (ties: lower index first).

    The one step every scoring finder shares, so a finder differs from another only in its scores.

    >>> g = [NodeGroup("a", 3, (), ())]
    >>> mask_from_scores(g, [torch.tensor([0.1, 0.9, 0.5])], (2,)).kept
    ((1, 2),)
    """
    kept = []
    for g, s, c in zip(groups, scores, counts):
        if s.shape != (g.size,):
            raise ValueError(f"scores of group '{g.name}' have shape {tuple(s.shape)}, expected ({g.size},)")
        # stable sort on -score keeps the lower index first among equal scores
        order = torch.sort(-s.detach().float().cpu(), stable=True).indices[:c]
        kept.append(tuple(sorted(order.tolist())))
    return NodeMask(tuple(kept))
