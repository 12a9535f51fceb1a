"""Sanity checks of a found mask (Frankle, Dziugaite, Roy & Carbin, ICLR 2021, "Pruning neural
networks at initialization: why are we missing the mark?"; Su et al. 2020 for random tickets).

Each check is one more trial, trained like every other, that asks what the finder's mask owes to
what it claims to have found:

- `shuffle`: every layer keeps as many weights (nodes) as the finder's mask, at random positions:
  does the finder find *which* weights, or only *how many per layer*?
- `reinit`: the same mask from a fresh initialization (another draw of the parent's init): does the
  mask need its own init values (the lottery-ticket claim)?
- `invert`: every layer keeps as many units as the finder's mask, the lowest-scoring ones: do the
  scores rank anything?
"""

from __future__ import annotations

import torch

from ..finders.base import Found
from ..masks import NodeMask, WeightMask, mask_from_scores, random_mask, shuffle_weight_mask, weight_mask_from_counts
from ..models import Parent


def derive(check: str, base: Found, parent: Parent, generator: torch.Generator, fresh: Parent | None = None) -> Found:
    """The `check` variant of `base` (a finder's answer for `parent`); `fresh` is the reinit's parent.

    The search cost stays the finder's: a check costs what the mask it checks cost.

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 8, 8), 10, 0, (8, 4))
    >>> base = Found(NodeMask(((0, 1, 2, 3), (0, 1))), scores=[torch.arange(8.0), torch.arange(4.0)])
    >>> derive("invert", base, p, torch.Generator()).mask.kept
    ((0, 1, 2, 3), (0, 1))
    """
    mask = base.mask
    if check == "reinit":
        if fresh is None:
            raise ValueError("the reinit check needs a freshly initialized parent")
        return Found(mask, base.cost, base.scores, {n: t.detach().clone() for n, t in fresh.state_dict().items()})
    if check == "shuffle":
        if isinstance(mask, WeightMask):
            new: NodeMask | WeightMask = shuffle_weight_mask(mask, generator)
        else:
            new = random_mask(parent.node_groups(), mask.kept_counts(), generator)
        return Found(new, base.cost, None, base.init)
    if check == "invert":
        if base.scores is None:
            raise ValueError("the invert check needs a finder that ranks scores")
        if isinstance(mask, WeightMask):
            assert isinstance(base.scores, dict)  # weight scores by tensor name (`Found.scores`)
            flipped = {n: -s for n, s in base.scores.items()}
            new = weight_mask_from_counts(flipped, mask.kept_counts())
        else:
            assert not isinstance(base.scores, dict)  # node scores, one tensor per group
            new = mask_from_scores(parent.node_groups(), [-s for s in base.scores], mask.kept_counts())
        return Found(new, base.cost, None, base.init)
    raise ValueError(f"unknown check {check!r}")
