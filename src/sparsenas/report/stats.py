"""The statistics the report needs, and nothing else: summaries, paired t-tests, Holm, verdicts.

Pure Python plus scipy's t distribution, so the numbers can be checked by hand (the tests do).
Every function takes plain float sequences; nan marks a missing value (a diverged trial) and is
dropped, so callers never have to filter twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _st

NAN = float("nan")


@dataclass(frozen=True)
class Summary:
    """Mean, spread and 95% t-interval of the finite values of a sample."""

    n: int
    mean: float
    sd: float  # sample standard deviation, ddof=1 (nan when n < 2)
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Paired:
    """A paired comparison of x against y: statistics of the differences d = x - y."""

    n: int  # pairs where both sides are finite
    mean_diff: float
    ci_low: float
    ci_high: float
    t: float
    p: float  # two-sided, unadjusted


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    if n == 0:
        return NAN, NAN
    m = sum(xs) / n
    if n < 2:
        return m, NAN
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))


def _half_width(sd: float, n: int, level: float) -> float:
    # Half-width of a two-sided t-interval: t_{(1+level)/2, n-1} * sd / sqrt(n).
    if n < 2:
        return NAN
    return float(_st.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)


def summarize(values: Sequence[float], level: float = 0.95) -> Summary:
    """Summarize the finite values (nan and inf are dropped): n, mean, sd (ddof=1), t-interval.

    >>> s = summarize([0.90, 0.92, 0.91]); (s.n, round(s.mean, 4), round(s.sd, 4))
    (3, 0.91, 0.01)
    """
    xs = _finite(values)
    mean, sd = _mean_sd(xs)
    h = _half_width(sd, len(xs), level)
    return Summary(len(xs), mean, sd, mean - h, mean + h)


def paired(x: Sequence[float], y: Sequence[float], level: float = 0.95) -> Paired:
    """Two-sided paired t-test of x - y (scipy.stats.ttest_rel semantics) with a t-interval.

    A pair is dropped when either side is not finite (a diverged trial excludes its seed). When all
    differences are equal (up to float rounding) the t statistic is undefined, and a t-test would
    call two seeds that differ by the same 1/360 "certain". Then the exact two-sided sign test
    stands in: p = 1 if the differences are all zero, else p = min(1, 2 * 0.5**n).

    >>> r = paired([0.90, 0.92, 0.91], [0.88, 0.91, 0.90]); (r.n, round(r.mean_diff, 4))
    (3, 0.0133)
    >>> paired([0.5, 0.5], [0.49, 0.49]).p  # two equal differences: the sign test's 0.5
    0.5
    """
    if len(x) != len(y):
        raise ValueError(f"paired() needs equal lengths, got {len(x)} and {len(y)}")
    d = [float(a) - float(b) for a, b in zip(x, y) if math.isfinite(float(a)) and math.isfinite(float(b))]
    n = len(d)
    mean, sd = _mean_sd(d)
    if n < 2:
        return Paired(n, mean, NAN, NAN, NAN, NAN)
    h = _half_width(sd, n, level)
    if sd <= 1e-12 * max(1.0, abs(mean)):
        if abs(mean) <= 1e-12:
            return Paired(n, mean, mean, mean, NAN, 1.0)
        return Paired(n, mean, mean, mean, math.copysign(math.inf, mean), min(1.0, 2.0 * 0.5**n))
    t = mean / (sd / math.sqrt(n))
    p = float(2.0 * _st.t.sf(abs(t), n - 1))
    return Paired(n, mean, mean - h, mean + h, t, min(p, 1.0))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values, in the input order; nan passes through.

    The k-th smallest of m p-values is multiplied by (m - k + 1), then a running maximum keeps the
    adjusted values monotone in the original ranking, and they are capped at 1.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [float(p) for p in pvalues]
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def verdict(p: Paired, adjusted_p: float, alpha: float = 0.05, *, higher_is_better: bool = True) -> str:
    """Plain-words outcome of a paired comparison of a finder (x) against its control (y).

    Returns "better", "worse", "no significant difference", or "too few seeds" (fewer than two
    usable pairs). Pass ``higher_is_better=False`` for metrics such as the convergence epoch.

    >>> verdict(paired([0.9, 0.92, 0.91], [0.8, 0.83, 0.8]), 0.001)
    'better'
    """
    if p.n < 2 or math.isnan(adjusted_p):
        return "too few seeds"
    if adjusted_p >= alpha or p.mean_diff == 0.0:
        return "no significant difference"
    return "better" if (p.mean_diff > 0) == higher_is_better else "worse"
