"""The runner: plan the trials, skip what the store holds, hand the rest to an executor, store what it returns.

For each seed the parent's init θ0 and the data order are fixed by the seed; every trial of that
seed starts from θ0 restricted to its mask (unless its finder says otherwise: IMP rewound to step k,
the `reinit` check's fresh init) and is trained by the same loop with the same budget. An executor
(`protocol.executors`: local, ray) asks every pending trial's finder for its mask (`protocol.find`),
cuts the run's trials into populations of one compacted shape, across seeds (`protocol.populations`), trains each
population together (`protocol.members`) and reports it; this process stores each population in one
transaction, the store's only writer, and holds the run directory for the whole run (`store.run_lock`).

A run killed at any moment leaves whole populations stored, so a resumed run re-forms the same
populations and gives the numbers an uninterrupted one would have, to the last bit; a trial keyed
by older code gives way to its new key (`binding.supersede_older_versions`).
"""

from __future__ import annotations

import platform
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from ..data import fingerprint, load_dataset
from ..finders import get_finder
from ..masks import prunable_weight_count
from ..masks.groups import check_node_groups
from ..models import Parent, build_parent, is_stochastic
from ..store import Store, TrialRecord, run_lock
from ..train import peak_memory, reset_peak_memory, tune_malloc
from ..train.augment import check_augment
from ..train.stacked import population_engine
from .binding import bind_run_dir, supersede_older_versions
from .executors import Driver, get_executor
from .members import EpochHook, Trained
from .plan import PlannedTrial, make_plan
from .spec import RunSpec
from .state import keep_state, stored_dense, stored_state

# on_trial(done_count, total, trial, record or None): None when its population starts training
TrialHook = Callable[[int, int, PlannedTrial, TrialRecord | None], None]


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


def rebuilt_from_widths(spec: RunSpec, input_shape: tuple[int, ...], num_classes: int, parent: Parent, widths: tuple[int, ...]) -> bool:
    """Whether the model built with its group sizes as `--widths` is the parent again, so a stored
    run can be rebuilt from them (export does): true for chains (MLP, LeNet: one width per group),
    false where one width option makes many coupled groups (a ResNet's 16 makes twelve groups)."""
    try:
        again = build_parent(spec.model, input_shape, num_classes, 0, widths)
    except Exception:  # a user's constructor may fail any way on widths it was not written for
        return False
    shapes = lambda m: [(n, tuple(t.shape)) for n, t in m.state_dict().items()]  # noqa: E731
    return shapes(again) == shapes(parent)


def run(
    spec: RunSpec,
    out: str | Path,
    on_trial: TrialHook | None = None,
    on_epoch: EpochHook | None = None,
) -> RunSummary:
    """Run every trial of `spec` not yet stored in `out`; each finished population is stored at once.

    The run's executor (`spec.executor`: `protocol.executors`) finds and trains the pending trials;
    this process stays the only writer to the store whichever it is.

    >>> import tempfile; from sparsenas.train import TrainSpec
    >>> s = run(RunSpec(sparsities=(0.5,), seeds=(0,), candidates=2, limit=64, train=TrainSpec(epochs=1)), tempfile.mkdtemp())
    >>> (s.planned, s.ran, s.populations)
    (3, 3, 2)
    """
    start = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    spec.validate()
    executor = get_executor(spec.executor)
    device = executor.data_device(spec)
    tune_malloc()
    data = load_dataset(spec.dataset, spec.data_dir, spec.limit)
    check_augment(spec.train, data)  # before the run directory is bound to a spec it cannot run
    data_id = fingerprint(data)
    data = data.to(device)
    reset_peak_memory(device)  # the run's peak: training, with the data resident, not the loading
    parent = build_parent(spec.model, data.input_shape, data.num_classes, 0, spec.widths)
    # hand-declared groups that leave out a tensor (a BatchNorm's running_mean) would fail mid-run
    check_node_groups(parent, data.input_shape, spec.model)
    for name in spec.finders:  # a finder that cannot search this parent (bn-scale without BatchNorm) says so now
        get_finder(name).check_parent(parent, spec.model)
        get_finder(name).check_sparsities(parent, spec.sparsities)
    widths = tuple(g.size for g in parent.node_groups())
    stochastic = is_stochastic(parent, data.input_shape)
    facts = {name: f for name in spec.finders if (f := get_finder(name).key_facts(parent, spec.allocation))}
    plan = make_plan(spec, widths, prunable_weight_count(parent), engine=population_engine(parent), stochastic=stochastic, facts=facts)
    threads = torch.get_num_threads()
    if spec.threads:
        torch.set_num_threads(spec.threads)  # restored below: an API caller's process keeps its setting
    with Store(out) as store, run_lock(out):
        bind_run_dir(store, spec, data_id, widths, rebuilt_from_widths(spec, data.input_shape, data.num_classes, parent, widths))
        supersede_older_versions(store, plan)  # a trial keyed by older code gives way to its new key
        done = store.done_keys()
        pending = [t for t in plan if t.key not in done]
        skipped, ran, diverged, n_pops = len(plan) - len(pending), 0, 0, 0
        devices: set[str] = set()

        def started_training(members: Sequence[PlannedTrial]) -> None:
            # announced one population at a time where they train one at a time; where many train
            # at once (Ray), the progress display (which shows the population in training) is told only of results
            if on_trial and executor.epoch_progress:
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

        driver = Driver(
            started=started_training,
            commit=commit,
            # a stored dense trial is the seed's trained parent where both train alike (no dropout draws)
            state=lambda seed: stored_state(store, plan, seed, spec.finders) | ({} if stochastic else stored_dense(store, plan, seed)),
            keep_state=lambda seed, memo: keep_state(store, plan, seed, memo),
        )
        try:
            executor.execute(spec, data, pending, driver, on_epoch)
        finally:
            torch.set_num_threads(threads)
            # logged however the session ends (Ctrl-C, out of memory): its trials are stored
            seconds = time.perf_counter() - start
            peak = peak_memory(device)
            if ran:
                try:
                    store.log_session(
                        {
                            "started": started,
                            "trials": ran,
                            "populations": n_pops,
                            "seconds": round(seconds, 3),
                            "peak_memory_bytes": peak,
                            "device": ", ".join(sorted(devices)) or str(device),
                            "population_cap": spec.population_cap,
                            "torch": torch.__version__,
                            "host": platform.node(),
                            "executor": f"ray ({spec.address or 'local'})" if spec.executor == "ray" else spec.executor,
                            "threads": spec.threads or threads,
                        }
                    )
                except (sqlite3.Error, OSError):
                    pass  # the session line is a courtesy: never mask the error that ended the run
    return RunSummary(Path(out), len(plan), skipped, ran, diverged, seconds, n_pops, peak)
