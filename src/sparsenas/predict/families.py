"""The learning-curve families of Domhan, Springenberg & Hutter (IJCAI 2015, Table 1), as bounded
least-squares models of validation accuracy against position.

Positions are used in units of the first observed position, u = x / x[0] >= 1, so a curve read
every epoch and the same curve read every 430 steps are one curve. The function class of every
family but ilog2 is unchanged by that rescaling (its scale parameter absorbs it); ilog2 reads log(u + 1),
which is the paper's log(x + 1) when the first position is epoch 1.

Most families are an asymptote minus a decaying shape, y = c - A g(u; θ). Each is written here with
its shape normalized to g(1) = 1, a reparametrization of the paper's formula that keeps the same
function class: A is then c - y(1), so the box c in [0, 1], A in [-1, 1] admits every curve between
accuracies 0 and 1, and the linear parameters (c, A) of a start point have a closed form. A negative
A fits a falling curve (a network that overfits) by the same shapes falling; the paper's prior
admitted rising curves only.

Janoschek, Weibull and exp4 (c - exp(-a x^α + b)) are one function class: Weibull's (κx)^δ is
Janoschek's k x^δ with k = κ^δ, and exp4's e^b is Janoschek's c - β. Janoschek and Weibull are both
kept, as the paper kept them, at half the prior weight each, so the class counts once in the mixture;
exp4 is not repeated. The Hill function (dr_hill) is log-power, likewise not repeated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
# g(u, *θ) -> shape values; u and each θ broadcast against one another
Shape = Callable[..., Array]


@dataclass(frozen=True)
class Family:
    """One curve family: its model y = f(u, p), its box bounds, and a start point for a fit.

    >>> fam = family("pow3"); fam.params
    ('c', 'A', 'log_alpha')
    >>> [round(float(v), 3) for v in fam.model(np.array([1.0, 4.0]), np.array([0.9, 0.4, math.log(0.5)]))]
    [0.5, 0.7]
    """

    name: str
    formula: str  # the paper's formula, in its own parameters
    params: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    prior: float  # prior weight in the mixture
    model: Callable[[Array, Array], Array]
    start: Callable[[Array, Array], Array | None]  # (u, y) -> a start point inside the box, or None


def _closed_form_start(shape: Shape, grid: Array, lower: Sequence[float], upper: Sequence[float]) -> Callable[[Array, Array], Array | None]:
    """For y = c - A g(u; θ): least squares for (c, A) at every θ of `grid` at once, clipped into the
    box; the θ with the smallest residual wins. Several θ make the fit less likely to start in the
    wrong valley (learning-curve fits have several), and the grid keeps it deterministic."""

    def start(u: Array, y: Array) -> Array | None:
        g = shape(u[None, :], *grid.T[:, :, None]) if grid.size else shape(u)[None, :]  # (m, n)
        gm = g.mean(axis=1, keepdims=True)
        var = ((g - gm) ** 2).sum(axis=1)
        ok = np.isfinite(var) & (var > 1e-12)
        if not ok.any():
            return None
        slope = ((g - gm) * (y - y.mean())).sum(axis=1) / np.where(ok, var, 1.0)  # dy/dg = -A
        A = np.clip(-slope, lower[1], upper[1])
        c = np.clip(y.mean() + A * gm[:, 0], lower[0], upper[0])
        rss = (((c[:, None] - A[:, None] * g) - y) ** 2).sum(axis=1)
        rss = np.where(ok & np.isfinite(rss), rss, np.inf)
        best = int(np.argmin(rss))  # argmin takes the first of ties: deterministic
        return np.array([c[best], A[best], *(grid[best] if grid.size else ())])

    return start


def _asymptotic(
    name: str,
    formula: str,
    theta: tuple[str, ...],
    shape: Shape,
    grid: Sequence[Sequence[float]],
    lower: Sequence[float],
    upper: Sequence[float],
    prior: float = 1.0,
) -> Family:
    lo, hi = (0.0, -1.0, *lower), (1.0, 1.0, *upper)
    grid_array = np.array(grid, dtype=float).reshape(len(grid), len(theta))

    def model(u: Array, p: Array) -> Array:
        return p[0] - p[1] * shape(u, *p[2:])

    return Family(name, formula, ("c", "A", *theta), lo, hi, prior, model, _closed_form_start(shape, grid_array, lo, hi))


def _grid(*axes: Sequence[float]) -> list[tuple[float, ...]]:
    return [tuple(v) for v in np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(axes), -1).T]


def _log(*values: float) -> tuple[float, ...]:
    # nonlinear parameters live on a log scale: a fit's steps and a prior's width are then ratios
    return tuple(math.log(v) for v in values)


def _geom(lo: float, hi: float, n: int) -> list[float]:
    return [float(v) for v in np.log(np.geomspace(lo, hi, n))]


def _log_power_model(u: Array, p: Array) -> Array:
    # a / (1 + (x / e^b)^c) with c = -exp(p[2]) < 0: it rises to the asymptote a
    return p[0] / (1.0 + (u / np.exp(p[1])) ** -np.exp(p[2]))


_LOG_POWER_GRID = np.array(_grid([float(b) for b in np.linspace(-5.0, 6.0, 8)], _geom(0.1, 5.0, 6)))


def _log_power_start(u: Array, y: Array) -> Array | None:
    b, c = _LOG_POWER_GRID[:, :1], _LOG_POWER_GRID[:, 1:]
    h = 1.0 / (1.0 + (u[None, :] / np.exp(b)) ** -np.exp(c))  # (m, n)
    a = np.clip((h * y).sum(axis=1) / (h * h).sum(axis=1), 0.0, 1.0)
    rss = ((a[:, None] * h - y) ** 2).sum(axis=1)
    rss = np.where(np.isfinite(rss), rss, np.inf)
    best = int(np.argmin(rss))
    return np.array([a[best], *_LOG_POWER_GRID[best]])


FAMILIES: tuple[Family, ...] = (
    _asymptotic(
        "pow3", "c - a x^(-α)", ("log_alpha",), lambda u, la: u ** (-np.exp(la)), _grid(_geom(0.02, 6.0, 12)), _log(0.01), _log(8.0)
    ),
    _asymptotic(
        "pow4",
        "c - (a x + b)^(-α)",
        ("log1p_s", "log_alpha"),  # (a x + b)^(-α) = a^(-α) (x + s)^(-α) with s = b / a
        lambda u, ls, la: ((u + np.expm1(ls)) / np.exp(ls)) ** (-np.exp(la)),
        _grid([math.log1p(v) for v in (-0.8, -0.4, 0.5, 3.0, 20.0)], _geom(0.03, 6.0, 8)),
        (math.log1p(-0.9), math.log(0.01)),
        (math.log1p(100.0), math.log(8.0)),
    ),
    _asymptotic(
        "exp3",
        "c - exp(-a x + b)",
        ("log_a",),
        lambda u, la: np.exp(-np.exp(la) * (u - 1.0)),
        _grid(_geom(0.01, 5.0, 12)),
        _log(1e-3),
        _log(10.0),
    ),
    _asymptotic("ilog2", "c - a / log(x + 1)", (), lambda u: np.log(2.0) / np.log(u + 1.0), [], (), ()),
    _asymptotic(
        "mmf",
        "α - (α - β) / (1 + (κ x)^δ)",
        ("log_kappa", "log_delta"),
        lambda u, lk, ld: (1.0 + np.exp(lk * np.exp(ld))) / (1.0 + (np.exp(lk) * u) ** np.exp(ld)),
        _grid(_geom(0.01, 100.0, 6), _geom(0.1, 6.0, 6)),
        _log(1e-3, 0.1),
        _log(100.0, 8.0),
    ),
    _asymptotic(
        "janoschek",
        "α - (α - β) exp(-κ x^δ)",
        ("log_kappa", "log_delta"),
        lambda u, lk, ld: np.exp(-np.exp(lk) * (u ** np.exp(ld) - 1.0)),
        _grid(_geom(0.01, 20.0, 6), _geom(0.05, 3.0, 6)),
        _log(1e-3, 0.05),
        _log(20.0, 4.0),
        prior=0.5,
    ),
    _asymptotic(
        "weibull",
        "α - (α - β) exp(-(κ x)^δ)",
        ("log_kappa", "log_delta"),
        lambda u, lk, ld: np.exp(-((np.exp(lk) * u) ** np.exp(ld) - np.exp(lk * np.exp(ld)))),
        _grid(_geom(0.01, 100.0, 6), _geom(0.05, 3.0, 6)),
        _log(1e-3, 0.05),
        _log(100.0, 4.0),
        prior=0.5,
    ),
    Family(
        "log_power",
        "a / (1 + (x / e^b)^c)",
        ("a", "b", "log_minus_c"),
        (0.0, -5.0, math.log(0.05)),
        (1.0, 8.0, math.log(8.0)),
        1.0,
        _log_power_model,
        _log_power_start,
    ),
)


def family(name: str) -> Family:
    """The family called `name` (a programmer's lookup: an unknown name is a KeyError).

    >>> family("ilog2").formula
    'c - a / log(x + 1)'
    """
    return {f.name: f for f in FAMILIES}[name]
