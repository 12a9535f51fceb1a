"""A run's results as pandas DataFrames, for analysis in a notebook.

``load_run("runs/demo")`` reads a run directory through the store (read-only: it never creates or
writes a store, so it is safe on a run that is still training) and returns its trials, one row per
trial with the columns of ``trials.csv`` (accuracies as fractions), and their learning curves, one
row per (trial, epoch). pandas is an optional dependency: ``pip install 'sparsenas[pandas]'``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SparsenasError
from .report.derive import derive_all
from .store import Store, TrialRecord

if TYPE_CHECKING:
    import pandas as pd

# what names a trial, first; then everything else TrialRecord.to_row() holds, in its order
_FIRST = ("key", "arm", "finder", "check", "control", "slot", "space", "sparsity", "seed", "status")
_CURVE = ("train_loss", "val_loss", "val_acc", "test_acc")


@dataclass(frozen=True)
class RunFrames:
    """One run directory read into DataFrames.

    `trials` has one row per stored trial (ordered by finder, sparsity, seed) with the columns of
    trials.csv, named as in TrialRecord, accuracies as fractions in [0, 1]: `arm` (the finder, or
    "finder~check" for a sanity check: what the report compares), `sparsity` (the target),
    `node_sparsity`, `weight_sparsity`, `effective_sparsity`, `params`, `flops`, `final_test_acc`,
    `best_val_test_acc`, `min_val_loss_epoch` (the convergence epoch), `search_candidates|steps|
    flops|seconds` (the search cost), `wall_seconds` and the rest of TrialRecord, plus the report's
    derived columns: `epochs_to_95` and `epochs_to_99` (first epoch reaching 95% / 99% of the same
    seed's dense final validation accuracy; <NA> if never reached or if there is no dense reference,
    told apart by `reference_val_acc`, NaN when there is none) and `auc_val_acc`. `kept_nodes` and
    `kept_weights` are tuples (trials.csv joins them with "-"). A diverged trial's accuracies are
    NaN; `slot` is -1 outside a hardware-aware run.

    `curves` has one row per (trial, epoch), epoch 0 being the untrained network: `key`, `arm`,
    `sparsity`, `seed`, `epoch`, `train_loss`, `val_loss`, `val_acc`, `test_acc`.
    """

    path: Path
    spec: dict[str, Any]  # the run's stored spec (what `sparsenas run` was given, canonical)
    trials: pd.DataFrame
    curves: pd.DataFrame


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise SparsenasError("reading a run into DataFrames needs pandas; pip install 'sparsenas[pandas]'") from None
    return pandas


def _reached(d: Any, epoch: int | None) -> bool | None:
    # None where the seed has no finished dense trial to set the target: unknown, not "no"
    return None if math.isnan(d.reference_val_acc) else epoch is not None


def _trial_rows(trials: list[TrialRecord]) -> list[dict[str, Any]]:
    derived = derive_all(trials)
    rows = []
    for t in trials:
        d = derived[t.key]
        row = {
            **t.to_row(),
            "arm": t.arm,
            "kept_nodes": t.kept_nodes,
            "kept_weights": t.kept_weights,
            "epochs_to_95": d.epochs_to_95,
            "epochs_to_99": d.epochs_to_99,
            "reached_95": _reached(d, d.epochs_to_95),
            "reached_99": _reached(d, d.epochs_to_99),
            "reference_val_acc": d.reference_val_acc,
            "auc_val_acc": d.auc_val_acc,
        }
        rows.append({k: row[k] for k in _FIRST} | {k: v for k, v in row.items() if k not in _FIRST})
    return rows


def load_run(run_dir: str | Path) -> RunFrames:
    """The trials and learning curves of the run in `run_dir`, as DataFrames (see `RunFrames`).

    >>> import tempfile; from sparsenas.protocol import RunSpec, run; from sparsenas.train import TrainSpec
    >>> d = tempfile.mkdtemp(); _ = run(RunSpec(sparsities=(0.5,), seeds=(0,), finders=("random",), limit=64, train=TrainSpec(epochs=1)), d)
    >>> r = load_run(d)
    >>> r.trials[["finder", "sparsity", "seed", "status", "params"]].to_dict("records")
    [{'finder': 'random', 'sparsity': 0.5, 'seed': 0, 'status': 'done', 'params': 17226}]
    >>> r.curves.columns.tolist(), len(r.curves)  # epochs 0 (untrained) and 1
    (['key', 'arm', 'sparsity', 'seed', 'epoch', 'train_loss', 'val_loss', 'val_acc', 'test_acc'], 2)
    """
    pd = _pandas()  # first: without pandas, fail before reading anything
    path = Path(run_dir)
    with Store(path, create=False) as store:  # create=False: a missing run is an error, never a new store
        spec, trials = store.spec(), store.trials()
    if not trials:
        raise SparsenasError(f"no trials in '{path}' yet; wait for its first population or run 'sparsenas run --out {path}'")
    frame = pd.DataFrame(_trial_rows(trials))
    for col in ("epochs_to_95", "epochs_to_99"):  # None (never / no reference) as <NA>, the rest as ints
        frame[col] = frame[col].astype("Int64")
    for col in ("reached_95", "reached_99"):
        frame[col] = frame[col].astype("boolean")
    curves = pd.DataFrame(
        [(t.key, t.arm, t.sparsity, t.seed, e.epoch, e.train_loss, e.val_loss, e.val_acc, e.test_acc) for t in trials for e in t.curve],
        columns=["key", "arm", "sparsity", "seed", "epoch", *_CURVE],
    )
    return RunFrames(path=path, spec=spec or {}, trials=frame, curves=curves)
