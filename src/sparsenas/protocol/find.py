"""Finding a trial's mask: its finder, seeded for that trial alone, then its sanity check, if any.

Every random step of a find draws from a generator seeded by (seed, sparsity, finder[, control]),
so a trial's mask never depends on what else the run holds or the order it runs in. The random twin
of a front slot (`match` in its spec) is drawn here too: as many nodes as the front member kept,
spread over the layers in proportion to their widths.
"""

from __future__ import annotations

import torch

from ..data import Dataset
from ..finders import SearchContext, get_finder
from ..finders.base import Found
from ..masks import allocate_total, random_mask
from ..models import Parent, build_parent
from ..runtime import seeded
from .checks import derive
from .plan import PlannedTrial, finder_seed
from .spec import STARTS, RunSpec
from .starts import start_from


def find(parent: Parent, data: Dataset, spec: RunSpec, planned: PlannedTrial, memo: dict | None = None) -> Found:
    """Ask `planned`'s finder for its mask (then apply its check, if any); `parent` is the seed's
    parent at θ0 and is not modified. `memo` is shared by the finds of one seed: a finder's answer
    is computed once for the finder's trial and all its checks, and finders share work through it.

    >>> from sparsenas.data import load_dataset; from sparsenas.protocol import make_plan
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,)); ds = load_dataset("digits")
    >>> find(build_parent("mlp", ds.input_shape, 10, seed=0), ds, spec, make_plan(spec, (256, 128))[1]).mask.kept_counts()
    (128, 64)
    """
    memo = {} if memo is None else memo
    if planned.slot >= 0 and get_finder(planned.finder).control:
        return _same_size(parent, data, spec, planned, memo)
    key = ("found", planned.finder, planned.sparsity, planned.control, planned.slot)
    own_seed = finder_seed(planned.seed, planned.sparsity, get_finder(planned.finder).draws_as or planned.finder, planned.control)
    ctx = SearchContext(
        parent=parent,
        data=data,
        train=spec.train,
        sparsity=planned.sparsity,
        seed=planned.seed,
        generator=torch.Generator().manual_seed(own_seed),
        options=spec.options_for(planned.finder),
        space=spec.space,
        allocation=spec.allocation,
        memo=memo,
        slot=planned.slot,
    )
    if key not in memo:
        with seeded(own_seed + planned.slot + 1, data.train.x.device):
            memo[key] = get_finder(planned.finder).find(ctx)  # a proxy's dropout, like the rest, independent of other trials
    base = memo[key]
    if not planned.check:
        return base
    own = finder_seed(planned.seed, planned.sparsity, planned.arm)  # the variant's own randomness
    if planned.check in STARTS:
        # scratch-e and scratch-b draw one init: the two differ only in their budget
        own = finder_seed(planned.seed, planned.sparsity, f"{planned.finder}~scratch") if planned.check.startswith("scratch") else own
        return start_from(planned.check, base, ctx, spec, torch.Generator().manual_seed(own))
    fresh = None
    if planned.check == "reinit":
        fresh = build_parent(spec.model, data.input_shape, data.num_classes, own, spec.widths)
    return derive(planned.check, base, parent, torch.Generator().manual_seed(own), fresh)


def _same_size(parent: Parent, data: Dataset, spec: RunSpec, planned: PlannedTrial, memo: dict) -> Found:
    """The random control of a front slot: as many nodes as the front finder's member kept, spread
    over the layers in proportion to their widths (`allocate_total`), drawn at random."""
    match = planned.spec["match"]
    twin = PlannedTrial(match, 0.0, planned.seed, "", {}, slot=planned.slot)
    total = sum(find(parent, data, spec, twin, memo).mask.kept_counts())
    groups = parent.node_groups()
    gen = torch.Generator().manual_seed(finder_seed(planned.seed, 0.0, f"random@{match}", planned.slot + 1))
    return Found(random_mask(groups, allocate_total(groups, total), gen))
