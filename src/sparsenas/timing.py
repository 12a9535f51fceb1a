"""Latency of a network's forward pass: warm-up, repeats, median and a distribution-free CI.

Timings on a shared machine are skewed (a preempted repeat is slow, never fast), so the centre is
the median and its 95% interval comes from order statistics: with n repeats, the ranks j and k
such that P(X_(j) <= median <= X_(k)) >= 0.95 under Binomial(n, 1/2), no normality assumed.
CUDA timings synchronize before reading the clock, so a repeat measures the work, not its launch.

Why not `torch.utils.benchmark.Timer`: its `blocked_autorange` keeps only block means (10 to 1000
calls each), so there are no per-call times to take this CI from; it reports the median and IQR of
those means instead. Side by side on a compacted LeNet-300-100 (one thread, batch 1 and 128), its
median was 0.97x to 1.14x ours over two runs (a block mean keeps the slow calls a median drops), and
it spent 0.2-0.3 s per measurement against our under 0.02 s, which `latency_of` pays per trial.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where latency is measured: the report reads `steady` without it
    import torch


@dataclass(frozen=True)
class Latency:
    """Milliseconds per forward pass at `batch`: median and its 95% CI over `repeats` timings."""

    batch: int
    median_ms: float
    lo_ms: float
    hi_ms: float
    repeats: int
    threads: int  # torch intra-op threads when measured (latency depends on it)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms [{self.lo_ms:.3f}, {self.hi_ms:.3f}]"


# A timing whose 95% CI of the median is wider than this share of the median is too unsteady to
# divide by: a ratio beside it would be noise ("x235.87" with a CI of [0.054, 23.99] ms, issue 16)
UNSTABLE_CI = 0.5


def steady(median_ms: float, lo_ms: float, hi_ms: float) -> bool:
    """Whether a latency (median and its 95% CI) is narrow enough to divide by: a CI at most
    `UNSTABLE_CI` of the median wide.

    >>> steady(2.0, 1.8, 2.4), steady(5.0, 0.054, 23.99), steady(0.0, 0.0, 0.0)
    (True, False, False)
    """
    return median_ms > 0 and hi_ms - lo_ms <= UNSTABLE_CI * median_ms


def median_ci(samples: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Median of `samples` and its distribution-free CI (order statistics, Binomial(n, 1/2)).

    >>> median_ci([float(i) for i in range(1, 101)])
    (50.5, 40.0, 61.0)
    """
    xs = sorted(samples)
    n = len(xs)
    if n == 0:
        raise ValueError("no samples")
    med = statistics.median(xs)
    if n < 6:  # too few repeats for a 95% interval: the range is the honest bound
        return med, xs[0], xs[-1]
    # X_(m+1) <= median <= X_(n-m) (1-based) with probability 1 - 2 P(B <= m): take the largest m
    # with P(B <= m) <= alpha/2; as 0-based indices that is xs[m] and xs[n-1-m]
    from scipy.stats import binom  # here, not at the top: scipy.stats costs 0.8 s at start-up

    q = (1.0 - level) / 2
    m = int(binom.ppf(q, n, 0.5))
    if binom.cdf(m, n, 0.5) > q:
        m -= 1
    return med, xs[max(m, 0)], xs[n - 1 - max(m, 0)]


def measure_latency(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, warmup: int = 10, repeats: int = 50) -> Latency:
    """Time `fn(x)` (no autograd) `repeats` times after `warmup` untimed calls.

    >>> import torch
    >>> lat = measure_latency(torch.nn.Linear(8, 4), torch.zeros(2, 8), warmup=2, repeats=20)
    >>> lat.batch, lat.repeats, lat.lo_ms <= lat.median_ms <= lat.hi_ms
    (2, 20, True)
    """
    import torch

    if repeats < 1:
        raise ValueError("repeats must be positive")
    cuda = x.device.type == "cuda"
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize(x.device)
            t0 = time.perf_counter()
            fn(x)
            if cuda:
                torch.cuda.synchronize(x.device)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    med, lo, hi = median_ci(times)
    return Latency(int(x.shape[0]), med, lo, hi, repeats, torch.get_num_threads())


def speedup(a: Latency, b: Latency) -> float:
    """How many times faster `b` is than `a` (ratio of medians).

    >>> speedup(Latency(1, 2.0, 1.9, 2.1, 9, 1), Latency(1, 1.0, 0.9, 1.1, 9, 1))
    2.0
    """
    return a.median_ms / b.median_ms if b.median_ms > 0 else math.inf
