"""The report's "How well the learning curves extrapolate" section: the run's own finished curves,
each cut at 10%, 20% and 30% of its epochs and forecast to its end by `sparsenas.predict` (the
extrapolator that lce-search stops candidates with), against the value each really ended at.

A reader of an lce-search result needs to know whether the forecasts it acted on were any good on
curves like these; the run's own curves answer that without a training of their own. The section
says which curves the extrapolator's constants were tuned on, so the reader knows whether this run is
a held-out test of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from ..predict.calibration import FRACTIONS, CalibrationRow, Extrapolation, cut, extrapolate, summarize
from ..predict.curves import TUNED_DATASET, TUNED_MODEL, TUNED_ON
from ..store.records import TrialRecord
from .figures import _png
from .markup import Block
from .tables import fmt

# a curve of 5 or 6 epochs is seen for its first two at 10%, 20% and 30% alike (at least two are
# always seen): three rows of one number; from 7 epochs on, 30% sees a third
MIN_EPOCHS = 7
MAX_CURVES = 120  # a forecast takes milliseconds; a large run is sampled (by trial key) to keep the report quick
FIGURE_FRACTION = 0.2


def curves_of(trials: Sequence[TrialRecord]) -> tuple[list[list[tuple[float, float]]], int]:
    """The (epoch, val_acc) curves the section forecasts, and how many finished trials qualified:
    finished trials of at least MIN_EPOCHS trained epochs, at most MAX_CURVES of them, by key.

    >>> curves_of([])
    ([], 0)
    """
    usable = sorted((t for t in trials if t.status == "done" and len(t.curve) - 1 >= MIN_EPOCHS), key=lambda t: t.key)
    return [[(float(p.epoch), p.val_acc) for p in t.curve] for t in usable[:MAX_CURVES]], len(usable)


def _last_value_mae(curves: Sequence[Sequence[tuple[float, float]]], fraction: float) -> float:
    errs = [abs(c[1][-1] - c[3]) for c in (cut(curve, fraction) for curve in curves) if c is not None]
    return sum(errs) / len(errs) if errs else float("nan")


def _held_out(spec: dict[str, Any] | None) -> str:
    if not spec or not {"dataset", "model"} <= set(spec):
        return "This run's spec does not name its dataset and parent, so whether it is a held-out test is unknown."
    if (spec["dataset"], spec["model"]) == (TUNED_DATASET, TUNED_MODEL):
        return (
            f"This run is {spec['dataset']} / {spec['model']}, the kind of curve they were tuned on, so its numbers "
            "are not a held-out test (unless its training differs)."
        )
    return f"This run ({spec['dataset']} / {spec['model']}) is a different dataset or parent: a held-out test of them."


def _row(r: CalibrationRow, last: float) -> list[str]:
    seen = "—" if not r.n else f"{r.seen[0]}" if r.seen[0] == r.seen[1] else f"{r.seen[0]}-{r.seen[1]}"
    return [
        f"{r.fraction:.0%}",
        str(r.n),
        seen,
        fmt(r.mae, ".2f", 100),
        fmt(r.median_ae, ".2f", 100),
        fmt(r.bias, "+.2f", 100),
        fmt(last, ".2f", 100),
        fmt(r.cover50, ".2f"),
        fmt(r.cover90, ".2f"),
        fmt(r.width90, ".2f", 100),
    ]


def figure(extrapolations: Sequence[Extrapolation], rows: Sequence[CalibrationRow], lasts: Sequence[float]) -> bytes:
    """Left: forecast vs final validation accuracy at FIGURE_FRACTION of the budget (mean and 90%
    interval per curve). Right: the forecast's mean absolute error and the last value's, per fraction.

    >>> png = figure(extrapolate(curves, 0.2), rows, lasts)  # doctest: +SKIP
    """
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    actual = [100 * e.actual for e in extrapolations]
    mean = [100 * e.forecast.mean for e in extrapolations]
    intervals = [e.forecast.interval(0.9) for e in extrapolations]
    err = [[max(0.0, m - 100 * lo) for m, (lo, _) in zip(mean, intervals)], [max(0.0, 100 * hi - m) for m, (_, hi) in zip(mean, intervals)]]
    left.errorbar(actual, mean, yerr=err, fmt="o", ms=3, alpha=0.6, elinewidth=0.8, capsize=0, label="forecast (90% interval)")
    if actual:
        lo, hi = min(actual + mean), max(actual + mean)
        left.plot([lo, hi], [lo, hi], color="black", ls="--", lw=1, label="forecast = actual")
    left.set_xlabel("final val accuracy (%)")
    left.set_ylabel("forecast of the final val accuracy (%)")
    left.set_title(f"From the first {FIGURE_FRACTION:.0%} of each curve")
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    fractions = [100 * r.fraction for r in rows]
    right.plot(fractions, [100 * r.mae for r in rows], marker="o", label="forecast (mean)")
    right.plot(fractions, [100 * v for v in lasts], marker="s", ls=":", color="grey", label="last value seen")
    right.set_xlabel("share of the budget seen (%)")
    right.set_ylabel("mean absolute error (pp)")
    right.set_title("Error of the final val accuracy")
    right.grid(alpha=0.3)
    right.legend(fontsize="small")
    return _png(fig)


def blocks(trials: Sequence[TrialRecord], spec: dict[str, Any] | None) -> list[Block]:
    """The section, when the run has finished curves of at least MIN_EPOCHS epochs; else nothing.

    >>> blocks([], None)
    []
    """
    curves, qualified = curves_of(trials)
    if not curves:
        return []
    by_fraction = {f: extrapolate(curves, f) for f in FRACTIONS}
    rows = [summarize(f, by_fraction[f]) for f in FRACTIONS]
    lasts = [_last_value_mae(curves, f) for f in FRACTIONS]
    sample = f"{len(curves)} of the {qualified} finished curves, chosen by trial key" if qualified > len(curves) else f"all {len(curves)}"
    return [
        ("h2", "How well the learning curves extrapolate"),
        (
            "p",
            f"Each finished trial's validation-accuracy curve of at least {MIN_EPOCHS} epochs ({sample}) is cut after "
            "10%, 20% and 30% of its epochs (at least its first two; epoch 0, at init, is left out) and forecast to its "
            "last epoch by the learning-curve extrapolator (a parametric ensemble after Domhan et al. 2015, the one "
            "lce-search stops candidates with), then checked against the value it ended at. MAE: mean |forecast mean − "
            "final val accuracy|, in pp; bias: the mean of forecast − final (negative: the forecasts run low); "
            "last-value MAE: the same error of the last value seen, what a forecast must beat "
            "to be worth making; coverage: the share of final values inside the central 50% and 90% intervals (nominal "
            "0.50 and 0.90); width: the mean width of the 90% interval, in pp. "
            f"The extrapolator's spread constants were tuned on {TUNED_ON}. " + _held_out(spec),
        ),
        (
            "table",
            [
                "budget seen",
                "curves",
                "epochs seen",
                "MAE pp",
                "median AE pp",
                "bias pp",
                "last-value MAE pp",
                "50% coverage",
                "90% coverage",
                "90% width pp",
            ],
            [_row(r, last) for r, last in zip(rows, lasts)],
        ),
        (
            "fig",
            "extrapolation.png",
            figure(by_fraction[FIGURE_FRACTION], rows, lasts),
            f"Left: the forecast of each curve's final validation accuracy from its first {FIGURE_FRACTION:.0%} of epochs "
            "(mean and 90% interval) against the value it ended at (dashed: a perfect forecast). Right: mean absolute error "
            "of the forecast and of the last value seen, by the share of the budget seen.",
        ),
    ]
