"""The runner: plan the trials, skip what the store holds, find, compact, train in populations, store.

For each seed the parent's init θ0 and the data order are fixed by the seed; every trial of that
seed starts from θ0 restricted to its mask (unless its finder says otherwise: IMP rewound to step k,
the `reinit` check's fresh init) and is trained by the same loop with the same budget. The runner first asks every pending trial's finder for its mask, then trains the trials of
the seed whose compacted shapes agree (the random controls, a finder's pick at the same per-layer
allocation) together as one population, and stores each population in one transaction.

Populations are consecutive slices, of at most K trials, of each shape's *pending* trials in plan
order. A run killed at any moment leaves whole populations stored, so a resumed run re-forms the same
populations and gives the numbers an uninterrupted one would have, to the last bit. A run grown later
(more finders or controls) trains its new trials in populations of their own, and K itself (from
`--population` and the device's total memory) is part of the arithmetic: either changes a trial's
numbers at fp32 rounding, never its mask.
"""

from __future__ import annotations

import contextlib
import platform
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from ..data import Dataset, fingerprint, load_dataset
from ..errors import SparsenasError
from ..finders import SearchContext, get_finder
from ..finders.base import Found
from ..finders.nsga2 import front_from_json, front_to_json
from ..masks import NodeMask, WeightMask, allocate_total, compact, pack_weight_mask, random_mask
from ..masks.groups import check_node_groups
from ..models import Parent, build_parent
from ..store import EpochRecord, Store, TrialRecord, run_lock
from ..store.weights import pack_weights
from ..train import peak_memory, population_size, reset_peak_memory, train_population, tune_malloc
from .binding import bind_run_dir, supersede_older_versions
from .checks import derive
from .trial import build_net, record_of
from .plan import PlannedTrial, finder_seed, make_plan
from .spec import RunSpec

# on_trial(done_count, total, trial, record or None): None when its population starts training
TrialHook = Callable[[int, int, PlannedTrial, TrialRecord | None], None]
# on_epoch(trial, epoch record): each member's new curve point
EpochHook = Callable[[PlannedTrial, EpochRecord], None]


@dataclass(frozen=True)
class RunSummary:
    out: Path
    planned: int
    skipped: int  # already in the store when the run started
    ran: int
    diverged: int
    seconds: float
    populations: int = 0  # populations trained (a population of one is a trial trained alone)
    peak_memory: int = 0  # bytes: process peak resident memory (CPU) or peak allocated (GPU)


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


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global generators seeded with `seed` inside the block, restored after it."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


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
    if key not in memo:
        finder = get_finder(planned.finder)
        own_seed = finder_seed(planned.seed, planned.sparsity, planned.finder, planned.control)
        ctx = SearchContext(
            parent=parent,
            data=data,
            train=spec.train,
            sparsity=planned.sparsity,
            seed=planned.seed,
            generator=torch.Generator().manual_seed(own_seed),
            options={k: getattr(spec, k) for k in finder.options},
            space=spec.space,
            allocation=spec.allocation,
            memo=memo,
            slot=planned.slot,
        )
        with _seeded(own_seed + planned.slot + 1, data.train.x.device):
            memo[key] = finder.find(ctx)  # a proxy's dropout, like the rest, independent of other trials
    base = memo[key]
    if not planned.check:
        return base
    own = finder_seed(planned.seed, planned.sparsity, planned.arm)  # the check's own randomness
    fresh = None
    if planned.check == "reinit":
        fresh = build_parent(spec.model, data.input_shape, data.num_classes, own, spec.widths)
    return derive(planned.check, base, parent, torch.Generator().manual_seed(own), fresh)


@dataclass(frozen=True)
class Trained:
    """What one population leaves for the store: records, packed weight masks and trained weights
    (by trial key). Plain data, so a Ray worker can hand it to the driver, the only writer."""

    records: list[TrialRecord]
    masks: dict[str, bytes]
    weights: dict[str, bytes]


def _same_size(parent: Parent, data: Dataset, spec: RunSpec, planned: PlannedTrial, memo: dict) -> Found:
    """The random control of a front slot: as many nodes as the front finder's member kept, spread
    over the layers in proportion to their widths (`allocate_total`), drawn at random."""
    match = planned.spec["match"]
    twin = PlannedTrial(match, 0.0, planned.seed, "", {}, slot=planned.slot)
    total = sum(find(parent, data, spec, twin, memo).mask.kept_counts())
    groups = parent.node_groups()
    gen = torch.Generator().manual_seed(finder_seed(planned.seed, 0.0, f"random@{match}", planned.slot + 1))
    return Found(random_mask(groups, allocate_total(groups, total), gen))


def train_members(
    parent: Parent,
    data: Dataset,
    spec: RunSpec,
    trials: Sequence[tuple[PlannedTrial, Found]],
    on_epoch: EpochHook | None = None,
) -> Trained:
    """Build and train same-shape trials of one seed together (one population): records, masks, weights.

    >>> from sparsenas.data import load_dataset; from sparsenas.protocol import make_plan
    >>> from sparsenas.train import TrainSpec
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,), finders=("random",), controls=2, train=TrainSpec(epochs=1))
    >>> ds = load_dataset("digits"); p = build_parent("mlp", ds.input_shape, 10, seed=0)
    >>> out = train_members(p, ds, spec, [(t, find(p, ds, spec, t)) for t in make_plan(spec, (256, 128))])
    >>> [(r.control, r.population) for r in out.records], len(out.weights)
    ([(0, 2), (1, 2)], 2)
    """
    seeds = {t.seed for t, _ in trials}
    if len(seeds) != 1:
        raise ValueError(f"a population trains trials of one seed (one data order), got seeds {sorted(seeds)}")
    built = [build_net(parent, found) for _, found in trials]
    nets = [net for net, _ in built]
    masks = [m for _, m in built]
    if any(m is None for m in masks) and any(m is not None for m in masks):
        raise ValueError("a population holds node-space or weight-space trials, not both")
    hook = (lambda m, rec: on_epoch(trials[m][0], rec)) if on_epoch else None
    # dropout draws from torch's global generator: seed it from the population's first trial, so the
    # draws do not depend on what this process (or a Ray worker) ran before
    with _seeded(int(trials[0][0].key[:15], 16), data.train.x.device):
        results = train_population(
            nets, data, spec.train, data_seed=trials[0][0].seed, on_epoch=hook,
            masks=None if masks[0] is None else masks,  # type: ignore[arg-type]
        )
    timed = any(get_finder(f).front for f in spec.finders)  # hardware-aware runs time their nets
    records = [record_of(parent, data, t, f, net, r, len(trials), spec.space, timed=timed)
               for (t, f), net, r in zip(trials, nets, results)]
    return Trained(
        records,
        {t.key: pack_weight_mask(f.mask) for t, f in trials if isinstance(f.mask, WeightMask)},
        {t.key: pack_weights(net) for (t, _), net in zip(trials, nets)},
    )


def train_trials(
    parent: Parent,
    data: Dataset,
    spec: RunSpec,
    trials: Sequence[tuple[PlannedTrial, Found]],
    on_epoch: EpochHook | None = None,
) -> list[TrialRecord]:
    """`train_members`' records only (one per trial, in order).

    >>> from sparsenas.data import load_dataset; from sparsenas.protocol import make_plan
    >>> from sparsenas.train import TrainSpec
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,), finders=("random",), controls=2, train=TrainSpec(epochs=1))
    >>> ds = load_dataset("digits"); p = build_parent("mlp", ds.input_shape, 10, seed=0)
    >>> [r.control for r in train_trials(p, ds, spec, [(t, find(p, ds, spec, t)) for t in make_plan(spec, (256, 128))])]
    [0, 1]
    """
    return train_members(parent, data, spec, trials, on_epoch).records


def run_trial(parent: Parent, data: Dataset, spec: RunSpec, planned: PlannedTrial, on_epoch: EpochHook | None = None) -> TrialRecord:
    """Find, compact and train one trial alone; `parent` is the seed's parent at θ0 and is not modified.

    >>> from sparsenas.data import load_dataset; from sparsenas.protocol import make_plan
    >>> from sparsenas.train import TrainSpec
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,), train=TrainSpec(epochs=1))
    >>> ds = load_dataset("digits"); t = make_plan(spec, (256, 128))[1]
    >>> r = run_trial(build_parent("mlp", ds.input_shape, 10, seed=0), ds, spec, t); r.finder, r.kept_nodes
    ('random', (128, 64))
    """
    return train_trials(parent, data, spec, [(planned, find(parent, data, spec, planned))], on_epoch)[0]


def shape_of(found: Found) -> tuple:
    """What must agree for two trials to share a population: the compacted widths of a node mask;
    every weight-masked trial trains at the parent's full size.

    >>> shape_of(Found(NodeMask(((0, 1), (3,)))))
    ('node', 2, 1)
    """
    if isinstance(found.mask, NodeMask):
        return ("node", *found.mask.kept_counts())
    return ("weight",)


def populations(
    trials: Sequence[tuple[PlannedTrial, Found]], size_of: Callable[[Found], int]
) -> list[list[tuple[PlannedTrial, Found]]]:
    """Split one seed's found trials into populations: same shape (`shape_of`), at most `size_of` each.

    Shapes come in order of their first trial in the plan; each shape's trials are cut into
    consecutive slices, so the same pending trials always form the same populations.

    >>> ts = [(PlannedTrial(f, 0.5, 0, f, {}), Found(NodeMask(((0,), tuple(range(c)))))) for f, c in [("a", 1), ("b", 1), ("c", 2), ("d", 1)]]
    >>> [[t.finder for t, _ in p] for p in populations(ts, lambda f: 2)]
    [['a', 'b'], ['d'], ['c']]
    """
    shapes: dict[tuple, list[tuple[PlannedTrial, Found]]] = {}
    for item in trials:
        shapes.setdefault(shape_of(item[1]), []).append(item)
    out = []
    for members in shapes.values():
        k = max(1, size_of(members[0][1]))
        out += [list(members[i : i + k]) for i in range(0, len(members), k)]
    return out


def seed_populations(
    spec: RunSpec, data: Dataset, seed: int, trials: Sequence[PlannedTrial], device: torch.device,
    memo: dict | None = None,
) -> tuple[Parent, list[list[tuple[PlannedTrial, Found]]]]:
    """The seed's parent at θ0 and its pending `trials`, found and cut into populations.

    Both executors call this, so a population is the same wherever it trains. `memo` may carry a
    stored front (`"nsga2"`) in, and carries the seed's front out; nothing else is kept in it.

    >>> from sparsenas.protocol import make_plan
    >>> spec = RunSpec(sparsities=(0.5,), seeds=(0,), limit=64); ds = load_dataset("digits", limit=64)
    >>> _, pops = seed_populations(spec, ds, 0, make_plan(spec, (256, 128)), torch.device("cpu"))
    >>> [[t.finder for t, _ in p] for p in pops]
    [['dense'], ['random', 'random-search']]
    """
    parent = build_parent(spec.model, data.input_shape, data.num_classes, seed, spec.widths).to(device)
    memo = {} if memo is None else memo  # one seed's finders share their work (dense parent, IMP's chain)
    found = [(t, find(parent, data, spec, t, memo)) for t in trials if t.seed == seed]
    for k in [k for k in memo if k != "nsga2"]:
        del memo[k]  # trained nets held for the search are not needed for the final training

    def size_of(f: Found) -> int:
        net = compact(parent, f.mask) if isinstance(f.mask, NodeMask) else parent
        return population_size(net, data.input_shape, spec.train, device, spec.population, masked=not isinstance(f.mask, NodeMask))

    return parent, populations(found, size_of)


def _front_name(plan: Sequence[PlannedTrial], seed: int) -> str | None:
    # named by the seed's slot-0 trial, whose key holds everything the search depends on
    key = next((t.key for t in plan if t.seed == seed and t.slot == 0 and not get_finder(t.finder).control), None)
    return None if key is None else f"front:{key}"


def stored_front(store: Store, plan: Sequence[PlannedTrial], seed: int) -> dict:
    """A memo holding the seed's stored hardware-aware front, if a session before this one stored it."""
    name = _front_name(plan, seed)
    text = store.note(name) if name else None
    return {"nsga2": front_from_json(text)} if text else {}


def keep_front(store: Store, plan: Sequence[PlannedTrial], seed: int, front: tuple | None) -> None:
    """Store the seed's front before any of its members trains: a resumed run trains the rest of
    the same front, and sizes every twin from it (a latency search is not repeatable)."""
    name = _front_name(plan, seed)
    if name and front is not None:
        store.put_note(name, front_to_json(*front))


def run(
    spec: RunSpec,
    out: str | Path,
    on_trial: TrialHook | None = None,
    on_epoch: EpochHook | None = None,
) -> RunSummary:
    """Run every trial of `spec` not yet stored in `out`; each finished population is stored at once.

    With `spec.executor == "ray"` the populations train as Ray tasks (`protocol.ray_executor`); this
    process stays the only writer to the store either way.

    >>> import tempfile; from sparsenas.train import TrainSpec
    >>> s = run(RunSpec(sparsities=(0.5,), seeds=(0,), candidates=2, limit=64, train=TrainSpec(epochs=1)), tempfile.mkdtemp())
    >>> (s.planned, s.ran, s.populations)
    (3, 3, 2)
    """
    start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    spec.validate()
    ray = spec.executor == "ray"
    device = torch.device("cpu") if ray else resolve_device(spec.device)  # ray: the workers' devices
    tune_malloc()
    data = load_dataset(spec.dataset, spec.data_dir, spec.limit)
    data_id = fingerprint(data)
    data = data.to(device)
    reset_peak_memory(device)  # the run's peak: training, with the data resident, not the loading
    parent = build_parent(spec.model, data.input_shape, data.num_classes, 0, spec.widths)
    # hand-declared groups that leave out a tensor (a BatchNorm's running_mean) would fail mid-run
    check_node_groups(parent, data.input_shape, spec.model)
    widths = tuple(g.size for g in parent.node_groups())
    plan = make_plan(spec, widths)
    threads = torch.get_num_threads()
    if spec.threads:
        torch.set_num_threads(spec.threads)  # restored below: an API caller's process keeps its setting
    with Store(out) as store, run_lock(out):
        bind_run_dir(store, spec, data_id, widths)
        supersede_older_versions(store, plan)  # a trial keyed by older code gives way to its new key
        done = store.done_keys()
        pending = [t for t in plan if t.key not in done]
        skipped, ran, diverged, n_pops = len(plan) - len(pending), 0, 0, 0
        devices: set[str] = set()

        def started_training(members: Sequence[PlannedTrial]) -> None:
            # announced one population at a time, locally; on Ray many train at once, and the
            # progress display (which shows the population in training) is told only of results
            if on_trial and not ray:
                for t in members:
                    on_trial(skipped + ran, len(plan), t, None)

        def commit(members: Sequence[PlannedTrial], trained: Trained) -> None:
            nonlocal ran, diverged, n_pops
            store.put_many(trained.records, trained.masks, trained.weights)  # the only writer
            n_pops += 1
            for t, record in zip(members, trained.records):
                ran += 1
                diverged += record.status == "diverged"
                devices.add(record.device)
                if on_trial:
                    on_trial(skipped + ran, len(plan), t, record)

        try:
            if ray:
                from .ray_executor import run_on_ray

                run_on_ray(spec, data, pending, started_training, commit, threads=spec.threads or threads,
                           front=lambda seed: stored_front(store, plan, seed), keep_front=lambda seed, f: keep_front(store, plan, seed, f))
            else:
                for seed in dict.fromkeys(t.seed for t in pending):  # the plan is seed-major
                    memo = stored_front(store, plan, seed)
                    parent, pops = seed_populations(spec, data, seed, pending, device, memo)
                    keep_front(store, plan, seed, memo.get("nsga2"))
                    for members in pops:
                        started_training([t for t, _ in members])
                        commit([t for t, _ in members], train_members(parent, data, spec, members, on_epoch))
        finally:
            torch.set_num_threads(threads)
            # logged however the session ends (Ctrl-C, out of memory): its trials are stored
            seconds = time.perf_counter() - start
            peak = peak_memory(device)
            if ran:
                try:
                    store.log_session({
                        "started": started, "trials": ran, "populations": n_pops, "seconds": round(seconds, 3),
                        "peak_memory_bytes": peak, "device": ", ".join(sorted(devices)) or str(device),
                        "population_cap": spec.population, "torch": torch.__version__, "host": platform.node(),
                        "executor": f"ray ({spec.address or 'local'})" if ray else "local",
                        "threads": spec.threads or threads,
                    })
                except (sqlite3.Error, OSError):
                    pass  # the session line is a courtesy: never mask the error that ended the run
    return RunSummary(Path(out), len(plan), skipped, ran, diverged, seconds, n_pops, peak)
