"""Per-cell summaries and the number formats every table of the report uses (the paired
comparisons are in compare.py).

A cell is one (finder, sparsity). Accuracy and convergence statistics use finished trials only (a
diverged trial has nan accuracy and is counted, not averaged); size and search cost do not depend on
how training went, so they average over every trial of the cell. Where a cell holds several trials of
one seed (the `--controls` random controls), they are averaged within the seed first: trials of one
seed share the init and the data order, so the seed, not the trial, is the independent unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..store.records import TrialRecord
from .derive import Derived
from .stats import Paired, Summary, summarize

CONTROL = "random"  # the control of the verdict table: uniform per-layer counts
# every random control the report knows: each is compared with, never counted as, a finder
# (random-erk: Erdos-Renyi-Kernel per-layer densities, Evci et al. 2020)
# (not read off the finders' `control` flag: reading a store imports no torch, and the registry does)
CONTROLS = (CONTROL, "random-erk")
UNIFORM = "uniform per-layer counts"  # how the verdicts name CONTROL's allocation
# where a finder's sub-network also starts (protocol.spec.STARTS, repeated so reading a store needs no torch)
STARTS = ("scratch-e", "scratch-b", "finetune")
DENSE = "dense"
NAN = float("nan")


@dataclass(frozen=True)
class Cell:
    """Summary of the trials of one (finder, sparsity) across seeds."""

    finder: str
    sparsity: float
    n_trials: int
    n_diverged: int
    n_seeds: int
    final_acc: Summary  # final_test_acc, finished trials only (per-seed means)
    best_val_acc: Summary  # best_val_test_acc, finished trials only
    conv_epoch: Summary  # min_val_loss_epoch, finished trials only
    epochs_to_99: Summary  # over the finished trials that reached 99% of the dense final val acc
    reached_99: int  # how many finished trials reached it (of n_trials - n_diverged)
    auc: Summary
    params: float
    flops: float
    node_sparsity: float
    weight_sparsity: float
    search_candidates: float
    search_steps: float
    search_seconds: float
    wall_seconds: float
    effective_sparsity: float = NAN  # fraction of prunable weights on no input-output path
    search_flops: float = 0.0
    n_collapsed: int = 0  # trials whose mask emptied a layer or cut the input from the output


def finder_order(names: Iterable[str]) -> list[str]:
    """Controls first (dense, random, random-erk), then the finders alphabetically, each followed by its checks.

    >>> finder_order(["snip~shuffle", "snip", "random-erk", "random", "dense", "imp"])
    ['dense', 'random', 'random-erk', 'imp', 'snip', 'snip~shuffle']
    """
    rank = {DENSE: 0} | {c: 1 + i for i, c in enumerate(CONTROLS)}
    return sorted(set(names), key=lambda f: (rank.get(f, len(rank)), f.split("~")[0], "~" in f, f))


def mean_or_nan(values: Iterable[float]) -> float:
    """The mean, or nan when there are no values.

    >>> mean_or_nan([1, 2]), mean_or_nan([])
    (1.5, nan)
    """
    xs = [float(v) for v in values]
    return sum(xs) / len(xs) if xs else NAN


def _seed_means(ts: Iterable[TrialRecord], value: Callable[[TrialRecord], float]) -> list[float]:
    """One value per seed: the mean over that seed's finished trials (nan ones dropped)."""
    by_seed: dict[int, list[float]] = {}
    for t in ts:
        by_seed.setdefault(t.seed, []).append(value(t))
    out = []
    for vals in by_seed.values():
        ok = [v for v in vals if not math.isnan(v)]
        out.append(sum(ok) / len(ok) if ok else NAN)
    return out


def summary_cells(trials: Sequence[TrialRecord], derived: dict[str, Derived]) -> list[Cell]:
    """One Cell per (finder, sparsity), controls first, sparsities ascending.

    >>> cells = summary_cells(trials, derive_all(trials))  # doctest: +SKIP
    >>> cells[0].finder, cells[0].final_acc.mean  # doctest: +SKIP
    ('dense', 0.9712)
    """
    groups: dict[tuple[str, float], list[TrialRecord]] = {}
    for t in trials:
        groups.setdefault((t.arm, t.sparsity), []).append(t)
    order = {f: i for i, f in enumerate(finder_order(t.arm for t in trials))}
    cells = []
    for (finder, sparsity), ts in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        done = [t for t in ts if t.status == "done"]
        to99 = [derived[t.key].epochs_to_99 for t in done]
        reached = [float(e) for e in to99 if e is not None]
        cells.append(
            Cell(
                finder=finder,
                sparsity=sparsity,
                n_trials=len(ts),
                n_diverged=len(ts) - len(done),
                n_seeds=len({t.seed for t in ts}),
                final_acc=summarize(_seed_means(done, lambda t: t.final_test_acc)),
                best_val_acc=summarize(_seed_means(done, lambda t: t.best_val_test_acc)),
                conv_epoch=summarize(_seed_means(done, lambda t: float(t.min_val_loss_epoch))),
                epochs_to_99=summarize(reached),
                reached_99=len(reached),
                auc=summarize(_seed_means(done, lambda t: derived[t.key].auc_val_acc)),
                params=mean_or_nan(t.params for t in ts),
                flops=mean_or_nan(t.flops for t in ts),
                node_sparsity=mean_or_nan(t.node_sparsity for t in ts),
                weight_sparsity=mean_or_nan(t.weight_sparsity for t in ts),
                search_candidates=mean_or_nan(t.search.candidates for t in ts),
                search_steps=mean_or_nan(t.search.steps for t in ts),
                search_seconds=mean_or_nan(t.search.seconds for t in ts),
                wall_seconds=mean_or_nan(t.wall_seconds for t in ts),
                effective_sparsity=mean_or_nan(t.effective_sparsity for t in ts),
                search_flops=mean_or_nan(t.search.flops for t in ts),
                n_collapsed=sum(t.collapsed for t in ts),
            )
        )
    return cells


# -- formatting shared by the markdown and HTML renderers -----------------------------------------


def fmt(x: float | None, spec: str = ".2f", scale: float = 1.0) -> str:
    """Format a number, or "n/a" for None and nan.

    >>> fmt(0.91234, ".2f", 100), fmt(float("nan"))
    ('91.23', 'n/a')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return format(x * scale, spec)


def fmt_p(p: float) -> str:
    """A p-value: two decimals, three significant digits below 0.1 (so 0.0496 never prints as
    "0.05" beside a "better"), "<0.001" below that.

    >>> fmt_p(0.6123), fmt_p(0.0496), fmt_p(0.0042), fmt_p(1e-7)
    ('0.61', '0.0496', '0.0042', '<0.001')
    """
    if math.isnan(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3g}" if p < 0.1 else f"{p:.2f}"


def fmt_si(x: float) -> str:
    """Compact count: 266200 -> '266.2k'.

    >>> fmt_si(266200), fmt_si(1.5e6), fmt_si(42)
    ('266.2k', '1.50M', '42')
    """
    if math.isnan(x):
        return "n/a"
    for unit, scale, spec in (("G", 1e9, ".2f"), ("M", 1e6, ".2f"), ("k", 1e3, ".1f")):
        if abs(x) >= scale:
            return format(x / scale, spec) + unit
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}"


def fmt_ci(s: Summary | Paired, spec: str = ".2f", scale: float = 1.0, within: tuple[float, float] | None = None) -> str:
    """A 95% interval as "[lo, hi]", or "n/a" when it is undefined (fewer than two values). `within`
    clips it to the quantity's range: a t-interval of accuracies near 100% from 2 seeds reaches past
    100%, where no accuracy lies.

    >>> from sparsenas.report.stats import summarize
    >>> fmt_ci(summarize([0.98, 1.0]), scale=100), fmt_ci(summarize([0.98, 1.0]), scale=100, within=(0.0, 1.0))
    ('[86.29, 111.71]', '[86.29, 100.00]')
    """
    if math.isnan(s.ci_low):
        return "n/a"
    lo, hi = s.ci_low, s.ci_high
    if within is not None:
        lo, hi = max(lo, within[0]), min(hi, within[1])
    return f"[{format(lo * scale, spec)}, {format(hi * scale, spec)}]"


def fmt_mean_sd(s: Summary, spec: str = ".2f", scale: float = 1.0) -> str:
    """ "mean ± sd", or just the mean when the sd is undefined."""
    if math.isnan(s.sd):
        return fmt(s.mean, spec, scale)
    return f"{format(s.mean * scale, spec)} ± {format(s.sd * scale, spec)}"
