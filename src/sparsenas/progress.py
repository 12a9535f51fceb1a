"""Progress bars for `sparsenas run` (rich): one bar over trials, one over the current trial's epochs.

rich is imported only where bars are drawn: `--quiet` runs skip its 0.14 s import.
"""

from __future__ import annotations

import sys
from typing import Any

from .protocol import PlannedTrial
from .store import EpochRecord, TrialRecord


class RunProgress:
    """Context manager passing `on_trial` / `on_epoch` hooks to the runner; silent when disabled."""

    def __init__(self, enabled: bool, epochs: int | None) -> None:
        # epochs None: no per-epoch bar (Ray workers report populations, not epochs)
        self.enabled = enabled
        self.epochs = epochs
        self._progress: Any = None
        self._trials: Any = None
        self._epochs: Any = None
        self._starting: list[PlannedTrial] = []  # the members of the population about to train
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )

    def __enter__(self) -> RunProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_trial(self, done: int, total: int, trial: PlannedTrial, record: TrialRecord | None) -> None:
        if self._progress is None:  # quiet: only a divergence is said
            if record is not None and record.status == "diverged":
                print(f"diverged: {trial.finder} s={trial.sparsity:g} seed={trial.seed} (recorded; the run goes on)", file=sys.stderr)
            return
        if self._trials is None:
            self._trials = self._progress.add_task("trials", total=total, completed=done)
            if self.epochs:
                self._epochs = self._progress.add_task("epochs", total=self.epochs)
        if record is None:
            # the runner announces a population's members one after another before training it
            self._starting.append(trial)
            first = self._starting[0]
            more = f" (+{len(self._starting) - 1} trained with it)" if len(self._starting) > 1 else ""
            label = f"{first.finder} s={first.sparsity:g} seed={first.seed}{more}"
            if self._epochs is not None:
                self._progress.update(self._epochs, completed=0, description=f"  {label}")
        else:
            self._starting = []
            self._progress.update(self._trials, completed=done)
            if record.status == "diverged":
                self._progress.console.print(
                    f"[yellow]diverged[/yellow]: {trial.finder} s={trial.sparsity:g} seed={trial.seed} (recorded; the run goes on)"
                )

    def on_epoch(self, trial: PlannedTrial, rec: EpochRecord) -> None:
        if self._epochs is not None:
            self._progress.update(self._epochs, completed=rec.epoch)
