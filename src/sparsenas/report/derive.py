"""Per-trial metrics that need the dense trial of the same seed, or the whole curve.

The store keeps only what a trial saw; anything measured against the dense parent (epochs to reach
95% or 99% of its final validation accuracy) is derived here, so changing the reference never
invalidates stored trials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..store.records import EpochRecord, TrialRecord

NAN = float("nan")


@dataclass(frozen=True)
class Derived:
    """Derived metrics of one trial.

    `epochs_to_95` / `epochs_to_99` are None when the target was never reached or when there is no
    usable dense reference; `reference_val_acc` (nan when there is none) tells the two apart.
    """

    reference_val_acc: float  # the dense parent's final val accuracy for this seed, or nan
    epochs_to_95: int | None
    epochs_to_99: int | None
    auc_val_acc: float  # normalized area under the val-accuracy curve, in [0, 1]; nan if undefined


def epochs_to_reach(curve: Sequence[EpochRecord], target: float) -> int | None:
    """First epoch whose val accuracy is >= target, or None if never (or target is nan).

    >>> c = [EpochRecord(e, 0.0, 0.0, a, a) for e, a in enumerate([0.1, 0.5, 0.9])]
    >>> epochs_to_reach(c, 0.5), epochs_to_reach(c, 0.95)
    (1, None)
    """
    if math.isnan(target):
        return None
    for point in curve:
        if point.val_acc >= target:
            return point.epoch
    return None


def auc_val_acc(curve: Sequence[EpochRecord]) -> float:
    """Trapezoid-rule area under val accuracy over epochs 0..E, divided by E (nan if E = 0).

    >>> c = [EpochRecord(e, 0.0, 0.0, a, a) for e, a in enumerate([0.0, 0.5, 1.0])]
    >>> auc_val_acc(c)  # (0 + 0.5)/2 + (0.5 + 1)/2 = 1.0, over E = 2
    0.5
    """
    if len(curve) < 2:
        return NAN
    pts = sorted(curve, key=lambda r: r.epoch)
    area = sum((b.epoch - a.epoch) * (a.val_acc + b.val_acc) / 2 for a, b in zip(pts, pts[1:]))
    span = pts[-1].epoch - pts[0].epoch
    return area / span if span > 0 else NAN


def final_val_acc(trial: TrialRecord) -> float:
    """The val accuracy at the last curve point of a finished trial; nan if diverged or no curve.

    A diverged parent's truncated curve is no fair reference, so it yields nan.
    """
    if trial.status != "done" or not trial.curve:
        return NAN
    return max(trial.curve, key=lambda r: r.epoch).val_acc


def derive(trial: TrialRecord, dense: TrialRecord | None) -> Derived:
    """Derived metrics of `trial`, against `dense`, the dense trial of the same seed (or None).

    A diverged trial keeps its epochs-to-target (reached before diverging, a true fact) but gets a
    nan AUC, since the truncated curve does not span the full budget.

    >>> d = derive(trial, dense_of_same_seed)  # doctest: +SKIP
    >>> d.epochs_to_99, d.auc_val_acc  # doctest: +SKIP
    (7, 0.912)
    """
    ref = NAN if dense is None else final_val_acc(dense)
    return Derived(
        reference_val_acc=ref,
        epochs_to_95=epochs_to_reach(trial.curve, 0.95 * ref),
        epochs_to_99=epochs_to_reach(trial.curve, 0.99 * ref),
        auc_val_acc=auc_val_acc(trial.curve) if trial.status == "done" else NAN,
    )


def derive_all(trials: Sequence[TrialRecord]) -> dict[str, Derived]:
    """Derived metrics for every trial, keyed by trial key; the dense reference is matched by seed.

    >>> derived = derive_all(Store("runs/x", create=False).trials())  # doctest: +SKIP
    >>> derived[trial.key].epochs_to_95  # doctest: +SKIP
    4
    """
    dense_by_seed: dict[int, TrialRecord] = {}
    for t in trials:
        # The parent is trained once per seed; if a run somehow holds two, keep the first stored.
        if t.finder == "dense":
            dense_by_seed.setdefault(t.seed, t)
    return {t.key: derive(t, dense_by_seed.get(t.seed)) for t in trials}
