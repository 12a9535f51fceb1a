"""The local executor: every seed's trials found, then every population trained in this process,
one after another, in plan order."""

from __future__ import annotations

from collections.abc import Sequence

from ...data import Dataset
from ..members import EpochHook, train_members
from ..plan import PlannedTrial
from ..populations import find_seed, run_populations
from ..spec import RunSpec
from .base import Driver, Executor, register


@register
class Local(Executor):
    name = "local"
    help = "this process: each seed's finds, then the populations (across seeds) one after another"

    def execute(
        self,
        spec: RunSpec,
        data: Dataset,
        pending: Sequence[PlannedTrial],
        driver: Driver,
        on_epoch: EpochHook | None = None,
    ) -> None:
        device = data.train.x.device
        parents, found = {}, []
        for seed in dict.fromkeys(t.seed for t in pending):  # the plan is seed-major
            memo = driver.state(seed)
            parents[seed], seed_found = find_seed(spec, data, seed, pending, device, memo)
            driver.keep_state(seed, memo)  # before any of the seed's front slots trains
            found += seed_found
        for members in run_populations(found):
            trials = [t for t, _ in members]
            driver.started(trials)
            driver.commit(trials, train_members(parents, data, spec, members, on_epoch))
