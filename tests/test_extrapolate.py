"""The learning-curve extrapolator (sparsenas.predict): synthetic curves with a known limit, the
distribution's bookkeeping, determinism, the cases a search feeds it, and the calibration's cuts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparsenas.predict import Forecast, forecast
from sparsenas.predict.calibration import CalibrationRow, calibrate, cut, extrapolate
from sparsenas.predict.curves import FALLBACK_SD
from sparsenas.predict.families import FAMILIES


def pow3(x, c=0.9, a=0.5, alpha=0.6):
    return c - a * np.asarray(x, dtype=float) ** -alpha


def exp3(x, c=0.85, a=0.4, b=-0.5):
    return c - np.exp(-a * np.asarray(x, dtype=float) + b)


@pytest.mark.parametrize("curve", [pow3, exp3], ids=["pow3", "exp3"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_curve_with_a_known_limit_is_forecast_near_it_and_covered(curve, seed):
    # the first 8 of 30 epochs, seen with an accuracy's jitter; the curve still rises steeply there
    xs = np.arange(1, 9)
    ys = curve(xs) + np.random.default_rng(seed).normal(0, 0.003, len(xs))
    truth = float(curve(30))
    f = forecast(xs, ys, 30)
    lo, hi = f.interval(0.9)
    assert abs(f.mean - truth) < 0.03, (f.mean, truth)
    assert lo <= truth <= hi, (lo, truth, hi)
    # the interval means something: narrower than a fifth of accuracy's range
    assert hi - lo < 0.2


def test_prob_above_falls_with_the_value_and_is_a_half_at_the_median():
    f = forecast([1, 2, 3, 4, 5], [0.70, 0.78, 0.81, 0.83, 0.835], 20)
    values = np.linspace(-0.1, 1.1, 121)
    probs = [f.prob_above(v) for v in values]
    assert all(a >= b for a, b in zip(probs, probs[1:]))
    assert probs[0] == 1.0 and probs[-1] == 0.0
    assert f.prob_above(f.quantile(0.5)) == pytest.approx(0.5, abs=1e-6)
    lo, hi = f.interval(0.9)
    assert f.prob_above(lo) == pytest.approx(0.95, abs=1e-6) and f.prob_above(hi) == pytest.approx(0.05, abs=1e-6)
    assert lo < f.quantile(0.25) < f.quantile(0.5) < f.quantile(0.75) < hi


def test_the_same_curve_gives_the_same_forecast_bit_for_bit():
    ys = pow3(np.arange(1, 9)) + np.random.default_rng(5).normal(0, 0.01, 8)
    a, b = forecast(range(1, 9), ys, 25), forecast(list(range(1, 9)), list(ys), 25.0)
    assert a == b
    assert a.quantile(0.1) == b.quantile(0.1) and a.prob_above(0.8) == b.prob_above(0.8)


def test_steps_and_epochs_are_one_curve():
    # positions are read relative to the first one: a curve read every 430 steps is the same curve
    ys = [0.8, 0.84, 0.86, 0.87, 0.875]
    assert forecast([1, 2, 3, 4, 5], ys, 20) == forecast([430, 860, 1290, 1720, 2150], ys, 20 * 430)


@pytest.mark.parametrize(
    "ys",
    [
        [0.5] * 6,  # flat
        [0.1] * 3,  # flat at chance, three points
        [0.0, 0.0, 0.0, 0.0],  # at the bottom of the range
        [1.0, 1.0, 1.0, 1.0, 1.0],  # at the top
        [0.90, 0.88, 0.86, 0.85, 0.83],  # falling (overfitting)
        [0.6, 0.9],  # two points
        [0.6, 0.7, 0.72],  # three points
        [0.3, 0.9, 0.2, 0.8, 0.1, 0.7, 0.4],  # noise
        [0.999, 1.0, 1.0],
    ],
)
def test_any_valid_curve_gives_a_forecast_inside_accuracys_range(ys):
    xs = list(range(1, len(ys) + 1))
    f = forecast(xs, ys, 50)
    lo, hi = f.interval(0.9)
    assert 0.0 <= lo <= f.quantile(0.5) <= hi <= 1.0
    assert 0.0 <= f.mean <= 1.0 and math.isfinite(f.mean)
    assert f.weights and sum(f.weights) == pytest.approx(1.0)


def test_a_flat_curve_stays_flat():
    f = forecast(range(1, 7), [0.5] * 6, 30)
    assert f.mean == pytest.approx(0.5, abs=1e-3)
    assert f.interval(0.5)[0] < 0.5 < f.interval(0.5)[1]


def test_a_falling_curve_is_forecast_below_where_it_started():
    f = forecast(range(1, 6), [0.90, 0.88, 0.86, 0.85, 0.83], 20)
    assert f.mean < 0.85


def test_one_point_falls_back_to_the_last_value_with_a_wide_spread():
    f = forecast([3], [0.7], 20)
    assert f.mean == 0.7 and f.families == ("last value",) and f.scales == (FALLBACK_SD,)
    lo, hi = f.interval(0.9)
    assert hi - lo > 0.4


def test_the_final_position_may_be_the_last_one_seen():
    f = forecast([1, 2, 3, 4], [0.7, 0.75, 0.78, 0.8], 4)
    assert abs(f.mean - 0.8) < 0.02


@pytest.mark.parametrize(
    "xs, ys, x_final",
    [
        ([], [], 10),
        ([1, 2], [0.5], 10),
        ([1, 1], [0.5, 0.6], 10),
        ([2, 1], [0.5, 0.6], 10),
        ([0, 1], [0.5, 0.6], 10),
        ([1, 2], [0.5, 1.2], 10),
        ([1, 2], [0.5, float("nan")], 10),
        ([1, 2], [0.5, 0.6], 1.5),
        ([1, 2], [0.5, 0.6], float("inf")),
    ],
)
def test_a_bad_curve_is_a_value_error_that_says_what(xs, ys, x_final):
    with pytest.raises(ValueError, match="xs|ys|x_final|point"):
        forecast(xs, ys, x_final)


def test_bad_quantiles_and_levels_are_value_errors():
    f = forecast([1, 2, 3], [0.5, 0.6, 0.65], 10)
    for q in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(ValueError, match="quantile"):
            f.quantile(q)
    with pytest.raises(ValueError, match="level"):
        f.interval(1.0)


def test_a_bare_forecast_is_a_point_mass():
    f = Forecast(0.7)
    assert f.quantile(0.3) == 0.7 and f.prob_above(0.69) == 1.0 and f.prob_above(0.7) == 0.0


def test_every_family_fits_its_own_kind_of_curve():
    # each family's start and fit recover a curve drawn from the family itself (no noise)
    from sparsenas.predict.curves import _fit

    u = np.arange(1.0, 9.0)
    for fam in FAMILIES:
        lo, hi = np.array(fam.lower), np.array(fam.upper)
        p = lo + (hi - lo) * np.linspace(0.35, 0.65, len(lo))
        p[0] = 0.9  # the asymptote
        y = np.clip(fam.model(u, p), 0, 1)
        fit = _fit(fam, u, y)
        assert fit is not None and fit.rss < 1e-6, fam.name


# -- calibration ------------------------------------------------------------------------------


def _curve(T, seed=0):
    rng = np.random.default_rng(seed)
    return [(0, 0.1)] + [(e, float(pow3(e) + rng.normal(0, 0.003))) for e in range(1, T + 1)]


def test_a_curve_is_cut_after_its_first_epochs_and_at_least_two():
    xs, ys, x_final, y_final = cut(_curve(20), 0.2)
    assert xs == [1.0, 2.0, 3.0, 4.0] and x_final == 20.0 and len(ys) == 4
    assert cut(_curve(10), 0.1)[0] == [1.0, 2.0]  # ceil(1) = 1 epoch, raised to 2
    assert cut(_curve(20), 0.3)[0] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert cut(_curve(2), 0.3) is None  # nothing left to forecast after the two it must see


def test_calibration_counts_only_the_curves_it_could_forecast():
    curves = [_curve(20, s) for s in range(4)] + [_curve(2)]
    rows = calibrate(curves, (0.1, 0.3))
    assert [r.fraction for r in rows] == [0.1, 0.3] and [r.n for r in rows] == [4, 4]
    assert rows[0].seen == (2, 2) and rows[1].seen == (6, 6)
    for r in rows:
        assert 0 <= r.median_ae <= r.mae * 2 and 0 <= r.cover50 <= r.cover90 <= 1 and r.width90 > 0
    # the pow3 curves are the extrapolator's own kind: close and covered
    assert rows[1].mae < 0.02 and rows[1].cover90 == 1.0


def test_extrapolations_keep_what_the_figure_needs():
    ex = extrapolate([_curve(10, 1)], 0.3)
    assert len(ex) == 1 and ex[0].seen == 3 and ex[0].total == 10
    assert ex[0].actual == _curve(10, 1)[-1][1]


def test_no_curve_gives_an_empty_row():
    (row,) = calibrate([_curve(2)], (0.2,))
    assert isinstance(row, CalibrationRow) and row.n == 0 and math.isnan(row.mae)
