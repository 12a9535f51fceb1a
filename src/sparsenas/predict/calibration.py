"""How well stored learning curves extrapolate: each curve cut at a fraction of its budget, its end
forecast from the cut, the forecast checked against the value the curve really ended at.

A curve is a sequence of (epoch, val_acc) points ending at its budget T (its last epoch). Points at
epoch 0 (at init, before any training) are dropped: they are chance level and lie on no curve family,
and positions must be positive. At fraction f the forecast sees the points with epoch <= ceil(f T),
and at least the first two (a curve of 10 epochs is cut after 2 at f = 0.1, not after 1); a curve
whose cut would leave nothing to forecast (fewer than three trained points) is left out of that
fraction, so `n` counts the curves that were forecast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .curves import INFLATION, NOISE, Forecast, forecast

FRACTIONS = (0.1, 0.2, 0.3)
MIN_SEEN = 2  # the fewest points a forecast is made from

Curve = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Extrapolation:
    """One curve's forecast from its first `seen` points of `total`, and the value it ended at."""

    forecast: Forecast
    actual: float
    seen: int  # trained points the forecast saw
    total: int  # trained points in the curve


@dataclass(frozen=True)
class CalibrationRow:
    """Error and interval coverage of the forecasts at one budget fraction (nan where n = 0)."""

    fraction: float
    n: int
    seen: tuple[int, int]  # fewest and most points a forecast saw
    mae: float  # mean |mean - actual|
    median_ae: float
    bias: float  # mean (mean - actual): negative when the forecasts run low
    cover50: float  # share of actual values inside the central 50% interval
    cover90: float
    width90: float  # mean width of the central 90% interval


def cut(curve: Curve, fraction: float) -> tuple[list[float], list[float], float, float] | None:
    """(xs, ys seen, final epoch, final value) of `curve` cut at `fraction` of its budget, or None
    when the cut would leave nothing to forecast.

    >>> cut([(0, 0.1), (1, 0.5), (2, 0.6), (3, 0.7), (4, 0.75)], 0.5)
    ([1.0, 2.0], [0.5, 0.6], 4.0, 0.75)
    >>> cut([(0, 0.1), (1, 0.5), (2, 0.6)], 0.5) is None
    True
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction!r}")
    points = sorted((float(e), float(v)) for e, v in curve if e > 0)
    if len(points) < MIN_SEEN + 1:
        return None
    final_x, final_y = points[-1]
    seen = [p for p in points[:-1] if p[0] <= math.ceil(fraction * final_x)]
    if len(seen) < MIN_SEEN:
        seen = points[:MIN_SEEN]
    return [p[0] for p in seen], [p[1] for p in seen], final_x, final_y


def extrapolate(curves: Sequence[Curve], fraction: float, *, noise: float = NOISE, inflation: float = INFLATION) -> list[Extrapolation]:
    """Every curve that can be cut at `fraction`, forecast from its cut.

    >>> e = extrapolate([[(1, 0.5), (2, 0.6), (3, 0.65), (4, 0.68)]], 0.5)
    >>> e[0].seen, e[0].total, e[0].actual
    (2, 4, 0.68)
    """
    out = []
    for curve in curves:
        c = cut(curve, fraction)
        if c is None:
            continue
        xs, ys, x_final, y_final = c
        total = sum(1 for e, _ in curve if e > 0)
        out.append(Extrapolation(forecast(xs, ys, x_final, noise=noise, inflation=inflation), y_final, len(xs), total))
    return out


def summarize(fraction: float, extrapolations: Sequence[Extrapolation]) -> CalibrationRow:
    """The error and coverage row of one fraction's extrapolations.

    >>> f = Forecast(0.8, (1.0,), (0.8,), (0.01,))
    >>> r = summarize(0.2, [Extrapolation(f, 0.81, 2, 10), Extrapolation(f, 0.9, 2, 10)])
    >>> r.n, round(r.mae, 3), round(r.bias, 3), r.cover90
    (2, 0.055, -0.055, 0.5)
    """
    if not extrapolations:
        nan = math.nan
        return CalibrationRow(fraction, 0, (0, 0), nan, nan, nan, nan, nan, nan)
    signed = np.array([e.forecast.mean - e.actual for e in extrapolations])
    err = np.abs(signed)
    i50 = [e.forecast.interval(0.5) for e in extrapolations]
    i90 = [e.forecast.interval(0.9) for e in extrapolations]
    actual = [e.actual for e in extrapolations]
    seen = [e.seen for e in extrapolations]
    return CalibrationRow(
        fraction=fraction,
        n=len(extrapolations),
        seen=(min(seen), max(seen)),
        mae=float(err.mean()),
        median_ae=float(np.median(err)),
        bias=float(signed.mean()),
        cover50=float(np.mean([lo <= a <= hi for (lo, hi), a in zip(i50, actual)])),
        cover90=float(np.mean([lo <= a <= hi for (lo, hi), a in zip(i90, actual)])),
        width90=float(np.mean([hi - lo for lo, hi in i90])),
    )


def calibrate(
    curves: Sequence[Curve], fractions: Sequence[float] = FRACTIONS, *, noise: float = NOISE, inflation: float = INFLATION
) -> list[CalibrationRow]:
    """One row per fraction: forecast error and interval coverage over `curves` (see the module
    docstring for how a curve is cut; `noise` and `inflation` are `forecast`'s).

    >>> rows = calibrate([[(e, 0.9 - 0.4 * e**-0.7) for e in range(1, 11)]], (0.3,))
    >>> rows[0].n, rows[0].mae < 0.05, rows[0].cover90
    (1, True, 1.0)
    """
    return [summarize(f, extrapolate(curves, f, noise=noise, inflation=inflation)) for f in fractions]
