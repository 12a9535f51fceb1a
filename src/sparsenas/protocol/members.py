"""Training found trials: one population of same-shape trials (of one or several seeds), and what it leaves behind.

Both executors call `train_members` (the Ray executor inside a task), so a population trains the
same wherever it runs; what comes back (`Trained`) is plain data for the store, the only writer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..data import Dataset
from ..finders import get_finder
from ..finders.base import Found
from ..masks import WeightMask, pack_weight_mask
from ..models import Parent
from ..runtime import seeded
from ..store import EpochRecord, TrialRecord
from ..store.weights import pack_weights
from ..train import train_population
from .find import find
from .plan import PlannedTrial
from .spec import RunSpec
from .trial import build_net, record_of

# on_epoch(trial, epoch record): each member's new curve point
EpochHook = Callable[[PlannedTrial, EpochRecord], None]


@dataclass(frozen=True)
class Trained:
    """What one population leaves for the store: records, packed weight masks and trained weights
    (by trial key). Plain data, so a Ray worker can hand it to the driver, the only writer."""

    records: list[TrialRecord]
    masks: dict[str, bytes]
    weights: dict[str, bytes]


def train_members(
    parents: Mapping[int, Parent],
    data: Dataset,
    spec: RunSpec,
    trials: Sequence[tuple[PlannedTrial, Found]],
    on_epoch: EpochHook | None = None,
) -> Trained:
    """Build and train same-shape trials together (one population): records, masks, weights.

    `parents` holds each seed's parent at θ0; a trial starts from its seed's parent and trains on
    its seed's data order, whichever seeds share its population.

    >>> from sparsenas.data import load_dataset; from sparsenas.models import build_parent; from sparsenas.protocol import make_plan
    >>> from sparsenas.train import TrainSpec
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0, 1), finders=("random",), controls=2, train=TrainSpec(epochs=1))
    >>> ds = load_dataset("digits"); ps = {s: build_parent("mlp", ds.input_shape, 10, seed=s) for s in (0, 1)}
    >>> out = train_members(ps, ds, spec, [(t, find(ps[t.seed], ds, spec, t)) for t in make_plan(spec, (256, 128))])
    >>> [(r.seed, r.control, r.population) for r in out.records], len(out.weights)
    ([(0, 0, 4), (0, 1, 4), (1, 0, 4), (1, 1, 4)], 4)
    """
    budgets = {found.train for _, found in trials}
    if len(budgets) != 1:
        raise ValueError("a population trains trials of one training budget (see populations.shape_of)")
    train = budgets.pop() or spec.train  # a start's own budget (finetune, scratch-b), else the run's
    built = [build_net(parents[t.seed], found) for t, found in trials]
    nets = [net for net, _ in built]
    masks = [m for _, m in built]
    if any(m is None for m in masks) and any(m is not None for m in masks):
        raise ValueError("a population holds node-space or weight-space trials, not both")
    hook = (lambda m, rec: on_epoch(trials[m][0], rec)) if on_epoch else None
    # dropout draws from torch's global generator: seed it from the population's first trial, so the
    # draws do not depend on what this process (or a Ray worker) ran before
    with seeded(int(trials[0][0].key[:15], 16), data.train.x.device):
        results = train_population(
            nets,
            data,
            train,
            data_seed=[t.seed for t, _ in trials],
            on_epoch=hook,
            masks=None if masks[0] is None else masks,  # type: ignore[arg-type]
        )
    timed = any(get_finder(f).front for f in spec.finders)  # hardware-aware runs time their nets
    records = [
        record_of(parents[t.seed], data, t, f, net, r, len(trials), spec.space, timed=timed)
        for (t, f), net, r in zip(trials, nets, results)
    ]
    return Trained(
        records,
        {t.key: pack_weight_mask(f.mask) for t, f in trials if isinstance(f.mask, WeightMask)},
        {t.key: pack_weights(net) for (t, _), net in zip(trials, nets)},
    )


def run_trial(parent: Parent, data: Dataset, spec: RunSpec, planned: PlannedTrial, on_epoch: EpochHook | None = None) -> TrialRecord:
    """Find, compact and train one trial alone; `parent` is the seed's parent at θ0 and is not modified.

    >>> from sparsenas.data import load_dataset; from sparsenas.models import build_parent; from sparsenas.protocol import make_plan
    >>> from sparsenas.train import TrainSpec
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,), train=TrainSpec(epochs=1))
    >>> ds = load_dataset("digits"); t = make_plan(spec, (256, 128))[1]
    >>> r = run_trial(build_parent("mlp", ds.input_shape, 10, seed=0), ds, spec, t); r.finder, r.kept_nodes
    ('random', (128, 64))
    """
    return train_members({planned.seed: parent}, data, spec, [(planned, find(parent, data, spec, planned))], on_epoch).records[0]
