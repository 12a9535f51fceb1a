"""What the report reads: a run's spec and trials from its store, and what its sparsities mean."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SparsenasError
from ..store.records import TrialRecord
from ..store.sqlite import Store


def load_trials(run_dir: str | Path) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
    """The run's spec and trials; a missing run or a run with no trials is a user error.

    >>> spec, trials = load_trials("runs/x")  # doctest: +SKIP
    """
    with Store(run_dir, create=False) as store:
        spec, trials = store.spec(), store.trials()
    if not trials:
        raise SparsenasError(f"no trials in {run_dir} yet; run 'sparsenas run --out {run_dir}' first")
    return spec, trials


def sparsity_label(trials: Sequence[TrialRecord]) -> str:
    """ "weight sparsity" for a weight-space run, "node sparsity" otherwise: what the sparsities mean."""
    return "weight sparsity" if any(t.space == "weight" for t in trials) else "node sparsity"
