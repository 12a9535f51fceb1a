"""The executor interface: where a run's pending trials are found and trained.

The runner plans, binds the store and is its only writer; an executor is handed the pending trials
and reports back through a `Driver` (a population starts, a population is done, a seed's front
state). It never imports the runner and never writes to the store. Both shipped executors find and
find with `find_seed`, cut populations across seeds with `run_populations` and train them with
`train_members`, so a population is the same wherever it trains.

A new executor is one file with a registered subclass:

    @register
    class Slurm(Executor):
        name, help = "slurm", "populations as Slurm jobs"
        def execute(self, spec, data, pending, driver, on_epoch=None): ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...data import Dataset
from ...registry import Registry
from ...runtime import resolve_device
from ..members import EpochHook, Trained
from ..plan import PlannedTrial
from ..spec import RunSpec


@dataclass(frozen=True)
class Driver:
    """The driver process's side of a run, as an executor sees it."""

    started: Callable[[Sequence[PlannedTrial]], None]  # a population begins training (progress display)
    commit: Callable[[Sequence[PlannedTrial], Trained], None]  # a population is done: store it, in one transaction
    state: Callable[[int], dict[str, Any]]  # a seed's stored front-finder state, as a memo (empty if none)
    keep_state: Callable[[int, dict[str, Any]], None]  # store a seed's front state before its slots train


class Executor:
    """Base class: subclasses set `name`, `help` and implement `execute`."""

    name: ClassVar[str]
    help: ClassVar[str]
    # the executor shows per-epoch progress (it trains in this process)
    epoch_progress: ClassVar[bool] = True

    def data_device(self, spec: RunSpec) -> torch.device:
        """Where the driver keeps the run's data (and measures its peak memory)."""
        return resolve_device(spec.device)

    def execute(
        self,
        spec: RunSpec,
        data: Dataset,
        pending: Sequence[PlannedTrial],
        driver: Driver,
        on_epoch: EpochHook | None = None,
    ) -> None:
        """Find and train every trial of `pending` (seed-major, in plan order), reporting to `driver`."""
        raise NotImplementedError


EXECUTORS: Registry = Registry("executor")


def register(cls: type[Executor]) -> type[Executor]:
    """Class decorator: register an executor under its `name` with its `help` line."""
    EXECUTORS.register(cls.name, help=cls.help)(cls)
    return cls


def get_executor(name: str) -> Executor:
    """An instance of the registered executor `name`.

    >>> get_executor("local").name
    'local'
    """
    return EXECUTORS.get(name)()
