"""The local executor: every population trained in this process, one after another, in plan order."""

from __future__ import annotations

from collections.abc import Sequence

from ...data import Dataset
from ..members import EpochHook, train_members
from ..plan import PlannedTrial
from ..populations import seed_populations
from ..spec import RunSpec
from .base import Driver, Executor, register


@register
class Local(Executor):
    name = "local"
    help = "this process: seed by seed, each seed's populations one after another"

    def execute(
        self,
        spec: RunSpec,
        data: Dataset,
        pending: Sequence[PlannedTrial],
        driver: Driver,
        on_epoch: EpochHook | None = None,
    ) -> None:
        device = data.train.x.device
        for seed in dict.fromkeys(t.seed for t in pending):  # the plan is seed-major
            memo = driver.state(seed)
            parent, pops = seed_populations(spec, data, seed, pending, device, memo)
            driver.keep_state(seed, memo)  # before any of the seed's front slots trains
            for members in pops:
                trials = [t for t, _ in members]
                driver.started(trials)
                driver.commit(trials, train_members(parent, data, spec, members, on_epoch))
