"""The runner: plan the trials, skip what the store holds, find, compact, train, store.

For each seed the parent's init θ0 and the data order are fixed by the seed; every trial of that
seed starts from θ0 restricted to its kept nodes and is trained by the same loop with the same
budget. Trials are independent: a trial's numbers do not depend on which other trials ran before it
in the process, so a resumed run gives the numbers an uninterrupted one would have.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..data import Dataset, fingerprint, load_dataset
from ..errors import SparsenasError
from ..finders import SearchContext, get_finder
from ..masks import compact, count_flops, count_params, weight_sparsity
from ..models import Parent, build_parent
from ..store import EpochRecord, Store, TrialRecord
from ..train import train
from .binding import bind_run_dir
from .plan import PlannedTrial, finder_seed, make_plan
from .spec import RunSpec

# on_trial(done_count, total, trial, record or None) / on_epoch(trial, epoch record)
TrialHook = Callable[[int, int, PlannedTrial, TrialRecord | None], None]
EpochHook = Callable[[PlannedTrial, EpochRecord], None]


@dataclass(frozen=True)
class RunSummary:
    out: Path
    planned: int
    skipped: int  # already in the store when the run started
    ran: int
    diverged: int
    seconds: float


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda` (an error if no GPU is visible) or `auto` (cuda when available) as a device.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SparsenasError("--device cuda asked for, but this torch build sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


def _finite_or_inf(x: float) -> float:
    return x if math.isfinite(x) else math.inf


def run_trial(parent: Parent, data: Dataset, spec: RunSpec, planned: PlannedTrial, on_epoch: EpochHook | None = None) -> TrialRecord:
    """Find, compact and train one trial; `parent` is the seed's parent at θ0 and is not modified.

    >>> from sparsenas.data import load_dataset; from sparsenas.protocol import make_plan
    >>> from sparsenas.train import TrainSpec
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,), train=TrainSpec(epochs=1))
    >>> ds = load_dataset("digits"); t = make_plan(spec, (256, 128))[1]
    >>> r = run_trial(build_parent("mlp", ds.input_shape, 10, seed=0), ds, spec, t); r.finder, r.kept_nodes
    ('random', (128, 64))
    """
    finder = get_finder(planned.finder)
    groups = parent.node_groups()
    ctx = SearchContext(
        parent=parent,
        data=data,
        train=spec.train,
        sparsity=planned.sparsity,
        seed=planned.seed,
        generator=torch.Generator().manual_seed(finder_seed(planned.seed, planned.sparsity, planned.finder)),
        options={k: getattr(spec, k) for k in finder.options},
    )
    found = finder.find(ctx)
    net = compact(parent, found.mask)
    params, flops = count_params(net), count_flops(net, data.input_shape)
    wsp = weight_sparsity(parent, net)
    hooks = [lambda rec: on_epoch(planned, rec)] if on_epoch else []
    result = train(net, data, spec.train, data_seed=planned.seed, callbacks=hooks)
    curve = result.curve
    # Best and convergence epochs are read from trained epochs (1..E): epoch 0 is the untrained
    # init, and a net whose validation loss never beats its init must not score "converged at 0".
    trained = curve[1:] or curve
    best = max(trained, key=lambda e: (e.val_acc, -e.epoch))  # highest val acc, earliest on ties
    conv = min(trained, key=lambda e: (_finite_or_inf(e.val_loss), e.epoch))
    done = result.status == "done"
    return TrialRecord(
        key=planned.key,
        finder=planned.finder,
        sparsity=planned.sparsity,
        seed=planned.seed,
        status=result.status,
        node_sparsity=found.mask.node_sparsity(groups),
        weight_sparsity=wsp,
        params=params,
        flops=flops,
        kept_nodes=found.mask.kept_counts(),
        node_mask=found.mask.kept,
        final_test_acc=curve[-1].test_acc if done else math.nan,
        best_val_epoch=best.epoch,
        best_val_test_acc=best.test_acc,
        min_val_loss_epoch=conv.epoch,
        wall_seconds=result.wall_seconds,
        search=found.cost,
        device=str(next(net.parameters()).device),
        curve=curve,
        spec=planned.spec,
    )


def run(
    spec: RunSpec,
    out: str | Path,
    on_trial: TrialHook | None = None,
    on_epoch: EpochHook | None = None,
) -> RunSummary:
    """Run every trial of `spec` not yet stored in `out`; each finished trial is stored at once.

    >>> import tempfile; from sparsenas.train import TrainSpec
    >>> s = run(RunSpec(sparsities=(0.5,), seeds=(0,), candidates=2, limit=64, train=TrainSpec(epochs=1)), tempfile.mkdtemp())
    >>> (s.planned, s.ran)
    (3, 3)
    """
    start = time.perf_counter()
    spec.validate()
    device = resolve_device(spec.device)
    data = load_dataset(spec.dataset, spec.data_dir, spec.limit)
    data_id = fingerprint(data)
    data = data.to(device)
    widths = tuple(g.size for g in build_parent(spec.model, data.input_shape, data.num_classes, 0, spec.widths).node_groups())
    plan = make_plan(spec, widths)
    with Store(out) as store:
        bind_run_dir(store, spec, data_id, widths)
        done = store.done_keys()
        pending = [t for t in plan if t.key not in done]
        skipped, ran, diverged = len(plan) - len(pending), 0, 0
        parents: dict[int, Parent] = {}
        for t in pending:
            if t.seed not in parents:
                parents.clear()  # the plan is seed-major: one parent in memory at a time
                parents[t.seed] = build_parent(spec.model, data.input_shape, data.num_classes, t.seed, spec.widths).to(device)
            if on_trial:
                on_trial(skipped + ran, len(plan), t, None)
            record = run_trial(parents[t.seed], data, spec, t, on_epoch)
            store.put(record)
            ran += 1
            diverged += record.status == "diverged"
            if on_trial:
                on_trial(skipped + ran, len(plan), t, record)
    return RunSummary(Path(out), len(plan), skipped, ran, diverged, time.perf_counter() - start)
