"""Learning-curve extrapolation: a predictive distribution of a curve's final value from its start.

A parametric ensemble in the spirit of Domhan, Springenberg & Hutter (IJCAI 2015): each family of
`families.FAMILIES` (pow3, pow4, exp3, ilog2, MMF, Janoschek, Weibull, log-power) is fitted to the
partial curve by bounded least squares (scipy's trust-region reflective method, started from the
best point of a small fixed grid); each fit becomes a Gaussian for the value at the final position,
its variance the delta method's parameter variance (a Laplace approximation under a broad prior on
each parameter, so an unidentified direction costs width instead of a singular matrix) plus the
residual noise; the Gaussians are mixed with weights from BIC (residuals floored at `BIC_FLOOR`, a
curve's own jitter) and each family's prior weight. Two constants set the spread: `NOISE`, the
residual sd a curve is assumed to have before its own residuals say otherwise, and `INFLATION`, a
multiplier on every variance; both were tuned on stored curves (benchmarks/calibrate_extrapolator.py).
Domhan et al. sample the combined model by MCMC; least squares and the delta method stand in for
that here because a forecast must take milliseconds.

Why not a prior-data fitted network (LC-PFN, Adriaensen et al. 2023), which issue 15 also offers?
The `lcpfn` package fetches its trained weights from the internet on first use, which these machines
cannot do; its authors trained that transformer on 10 million curves sampled from the prior, which is
GPU work, and these machines have two CPU cores and no GPU; the parametric ensemble has no weights to
ship, train or download. That is a judgement on cost, not a measurement: no PFN was trained or
compared here, so whether one would extrapolate this bench's curves better is an open question.

Forecasts are deterministic (no random numbers; a fixed grid of starts) and never raise on a valid
curve: a family that cannot be fitted is left out, and when none can be (a single point), the
forecast is the last value with a wide spread (`FALLBACK_SD`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .families import FAMILIES, Family

# NOISE and INFLATION: the grid point of benchmarks/calibrate_extrapolator.py whose 50% and 90%
# intervals covered closest to nominal on 120 Fashion-MNIST LeNet-300-100 curves (a node-space run
# of 20 epochs, a weight-space run of 10, both SGD with a cosine schedule); the numbers, and how
# they hold on held-out runs, are in benchmarks/extrapolator_calibration.md. NOISE is two to three
# times the epoch-to-epoch jitter of those curves (median 0.004-0.005, from second differences): it
# also absorbs how far the families' shapes are from a real curve.
TUNED_ON = "Fashion-MNIST LeNet-300-100 curves (node and weight space, 10 and 20 epochs, SGD with a cosine schedule)"
TUNED_DATASET, TUNED_MODEL = "fashion-mnist", "lenet-300-100"
# in the keys of lce-search's trials (`Finder.decided_by`): bump it with any change that moves a forecast
# (the constants below, the families, the fitting), so no run mixes picks made by two extrapolators
VERSION = "domhan-ensemble-1"
NOISE = 0.011  # prior residual sd of a validation-accuracy curve around its trend
INFLATION = 0.7  # variance inflation of every component
PRIOR_DOF = 2.0  # how many residuals NOISE counts as
FALLBACK_SD = 0.15  # spread of the last-value forecast when no family can be fitted
MAX_SD = 1.0  # a component wider than accuracy's whole range says nothing more
# the residual sd below which BIC stops rewarding a closer fit: the median epoch-to-epoch jitter of
# the tuning curves (0.004-0.005, from second differences); a fit closer than that fits noise
BIC_FLOOR = 0.004


@dataclass(frozen=True)
class Forecast:
    """A predictive distribution of a curve's final value: a mixture of Gaussians, clipped to [0, 1].

    `mean` is the mixture's mean, clipped; `families` names the component of each weight.

    >>> f = Forecast(0.8, weights=(1.0,), locs=(0.8,), scales=(0.01,))
    >>> round(f.prob_above(0.8), 3), f.interval(0.9) == (f.quantile(0.05), f.quantile(0.95))
    (0.5, True)
    """

    mean: float
    weights: tuple[float, ...] = ()
    locs: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()
    families: tuple[str, ...] = ()

    def _cdf(self, value: float) -> float:
        from scipy.special import ndtr  # here, not at the top: importing the finders (every command line) needs no scipy

        if not self.weights:  # a bare Forecast(mean) is a point mass
            return 1.0 if value >= self.mean else 0.0
        w, m, s = np.array(self.weights), np.array(self.locs), np.array(self.scales)
        z = np.where(s > 0, (value - m) / np.where(s > 0, s, 1.0), np.where(value >= m, np.inf, -np.inf))
        return float(np.dot(w, ndtr(z)))

    def prob_above(self, value: float) -> float:
        """P(final > value) under the clipped distribution (1 below 0, 0 from 1 up).

        >>> Forecast(0.8, (1.0,), (0.8,), (0.01,)).prob_above(0.9) < 1e-6
        True
        """
        if value < 0.0:
            return 1.0
        if value >= 1.0:
            return 0.0
        return min(1.0, max(0.0, 1.0 - self._cdf(value)))

    def quantile(self, q: float) -> float:
        """The q-quantile of the final value, in [0, 1].

        >>> round(Forecast(0.8, (1.0,), (0.8,), (0.01,)).quantile(0.5), 6)
        0.8
        """
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile q must lie strictly between 0 and 1, got {q!r}")
        if not self.weights:
            return self.mean
        lo = min(m - 10 * s for m, s in zip(self.locs, self.scales)) - 1e-9
        hi = max(m + 10 * s for m, s in zip(self.locs, self.scales)) + 1e-9
        # bisection on the mixture's CDF: a fixed number of halvings, so the answer is reproducible
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self._cdf(mid) < q:
                lo = mid
            else:
                hi = mid
        return min(1.0, max(0.0, 0.5 * (lo + hi)))

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """The central interval holding `level` of the probability.

        >>> lo, hi = Forecast(0.8, (1.0,), (0.8,), (0.01,)).interval(0.9); round(hi - lo, 4)
        0.0329
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"interval level must lie strictly between 0 and 1, got {level!r}")
        return self.quantile((1 - level) / 2), self.quantile((1 + level) / 2)

    def inflated(self, factor: float) -> Forecast:
        """The same forecast with every component's variance multiplied by `factor` (how the
        calibration tries inflations without refitting).

        >>> Forecast(0.8, (1.0,), (0.8,), (0.01,)).inflated(4.0).scales
        (0.02,)
        """
        if not factor > 0:
            raise ValueError(f"inflation factor must be positive, got {factor!r}")
        root = math.sqrt(factor)
        return Forecast(self.mean, self.weights, self.locs, tuple(min(MAX_SD, s * root) for s in self.scales), self.families)


def _validated(xs: Sequence[float], ys: Sequence[float], x_final: float) -> tuple[np.ndarray, np.ndarray, float]:
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"xs and ys must be flat sequences of one length, got shapes {x.shape} and {y.shape}")
    if len(x) == 0:
        raise ValueError("a forecast needs at least one observed point")
    if not (np.isfinite(x).all() and (x > 0).all() and (np.diff(x) > 0).all()):
        raise ValueError(f"xs must be positive, finite and strictly increasing, got {list(xs)!r}")
    if not (np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()):
        raise ValueError(f"ys must be accuracies in [0, 1], got {list(ys)!r}")
    if not (math.isfinite(x_final) and x_final >= x[-1]):
        raise ValueError(f"x_final must be finite and at least the last observed position {x[-1]!r}, got {x_final!r}")
    return x, y, float(x_final)


def _jacobian(fam: Family, u: np.ndarray, p: np.ndarray) -> np.ndarray:
    # forward differences, each step inside the box: (len(u), len(p))
    hi = np.array(fam.upper)
    base = fam.model(u, p)
    out = np.empty((len(u), len(p)))
    for i in range(len(p)):
        h = 1e-6 * max(1.0, abs(p[i]))
        q = p.copy()
        q[i] = p[i] + h if p[i] + h <= hi[i] else p[i] - h
        out[:, i] = (fam.model(u, q) - base) / (q[i] - p[i])
    return out


@dataclass(frozen=True)
class _Fit:
    family: Family
    p: np.ndarray
    rss: float


def _fit(fam: Family, u: np.ndarray, y: np.ndarray) -> _Fit | None:
    from scipy.optimize import least_squares  # here: scipy.optimize takes 0.3-0.6 s to import, and only a forecast needs it

    p0 = fam.start(u, y)
    if p0 is None or not np.isfinite(fam.model(u, p0)).all():
        return None
    lo, hi = np.array(fam.lower), np.array(fam.upper)
    p0 = np.clip(p0, lo, hi)
    try:
        res = least_squares(
            lambda p: fam.model(u, p) - y,
            p0,
            jac=lambda p: _jacobian(fam, u, p),
            bounds=(lo, hi),
            method="trf",
            x_scale="jac",
            ftol=1e-4,  # a cost change of 1e-4 of itself moves a forecast far less than the noise of an accuracy
            xtol=1e-4,
            max_nfev=40,
        )
    except (ValueError, np.linalg.LinAlgError):
        return None
    rss = float(np.sum(res.fun**2))
    return _Fit(fam, res.x, rss) if math.isfinite(rss) and np.isfinite(res.x).all() else None


def _component(fit: _Fit, u: np.ndarray, u_final: float, noise: float) -> tuple[float, float, float] | None:
    """(BIC, mean, variance) of the value at u_final under one fitted family."""
    n, k = len(u), len(fit.p)
    sigma2 = (fit.rss + PRIOR_DOF * noise**2) / (n - k + PRIOR_DOF)
    J = _jacobian(fit.family, u, fit.p)
    # a broad Gaussian prior on each parameter (sd: half its box) keeps the precision invertible
    prior_sd = (np.array(fit.family.upper) - np.array(fit.family.lower)) / 2
    cov = np.linalg.inv(J.T @ J / sigma2 + np.diag(1.0 / prior_sd**2))
    at = np.array([u_final])
    mean = float(fit.family.model(at, fit.p)[0])
    grad = _jacobian(fit.family, at, fit.p)[0]
    var = float(grad @ cov @ grad) + sigma2
    bic = n * math.log(max(fit.rss / n, BIC_FLOOR**2)) + k * math.log(n)
    if not (math.isfinite(mean) and math.isfinite(var) and math.isfinite(bic)):
        return None
    return bic, mean, var


def forecast(xs: Sequence[float], ys: Sequence[float], x_final: float, *, inflation: float = INFLATION, noise: float = NOISE) -> Forecast:
    """A predictive distribution of the curve's value at `x_final` from its values `ys` at `xs`.

    `xs`: positive, increasing positions (epochs or steps); `ys`: accuracies in [0, 1] there;
    `x_final` >= xs[-1]. `inflation` multiplies every variance; `noise` is the residual sd assumed
    before the curve's own residuals are seen.

    >>> f = forecast([1, 2, 3, 4, 5], [0.80, 0.85, 0.87, 0.88, 0.885], 20)
    >>> 0.88 < f.mean < 0.92, f.prob_above(0.5) > 0.99
    (True, True)
    """
    x, y, x_final = _validated(xs, ys, x_final)
    if not (inflation > 0 and noise > 0):
        raise ValueError(f"inflation and noise must be positive, got {inflation!r} and {noise!r}")
    u, u_final = x / x[0], x_final / x[0]
    comps: list[tuple[float, float, float, str]] = []
    with np.errstate(all="ignore"):  # a shape overflowing at a far corner of its box is a bad fit, not an error
        for fam in FAMILIES:
            if len(fam.params) > len(u):
                continue
            fit = _fit(fam, u, y)
            comp = _component(fit, u, u_final, noise) if fit is not None else None
            if comp is not None:
                comps.append((comp[0] - 2 * math.log(fam.prior), comp[1], comp[2], fam.name))
    if not comps:
        last = float(y[-1])
        return Forecast(last, (1.0,), (last,), (FALLBACK_SD,), ("last value",))
    scores = np.array([c[0] for c in comps])
    w = np.exp(-(scores - scores.min()) / 2)
    w /= w.sum()
    locs = tuple(float(c[1]) for c in comps)
    scales = tuple(min(MAX_SD, math.sqrt(inflation * c[2])) for c in comps)
    mean = min(1.0, max(0.0, float(np.dot(w, locs))))
    return Forecast(mean, tuple(float(v) for v in w), locs, scales, tuple(c[3] for c in comps))
