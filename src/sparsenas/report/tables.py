"""Per-cell summaries and paired comparisons: the numbers every table and figure of the report uses.

A cell is one (finder, sparsity). Accuracy and convergence statistics use finished trials only (a
diverged trial has nan accuracy and is counted, not averaged); size and search cost do not depend on
how training went, so they average over every trial of the cell. Where a cell holds several trials of
one seed (the `--controls` random controls), they are averaged within the seed first: trials of one
seed share the init and the data order, so the seed, not the trial, is the independent unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from ..store.records import TrialRecord
from .derive import Derived
from .stats import Paired, Summary, holm, paired, summarize, verdict

CONTROL = "random"
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


@dataclass(frozen=True)
class Comparison:
    """A finder against a control (random at the same sparsity, or the dense parent), paired by seed."""

    finder: str
    sparsity: float
    control: str  # "random" or "dense"
    metric: str  # "final_test_acc" or "min_val_loss_epoch"
    result: Paired  # differences finder - control (per-seed means on either side)
    p_holm: float  # Holm-adjusted across the sparsities of this finder, metric and control
    verdict: str
    n_seeds: int  # seeds present on both sides
    n_excluded: int  # of those, seeds dropped because either side diverged
    controls: float = 1.0  # finished control trials per seed, on average
    beats: float = NAN  # share of its seed's controls the finder does better than (ties count half), mean over seeds


# The metrics compared, and whether a larger value is the better one.
METRICS: dict[str, bool] = {"final_test_acc": True, "min_val_loss_epoch": False}


def finder_order(names: Iterable[str]) -> list[str]:
    """Controls first (dense, random), then the finders alphabetically, each followed by its checks.

    >>> finder_order(["snip~shuffle", "snip", "random", "dense", "imp"])
    ['dense', 'random', 'imp', 'snip', 'snip~shuffle']
    """
    rank = {DENSE: 0, CONTROL: 1}
    return sorted(set(names), key=lambda f: (rank.get(f, 2), f.split("~")[0], "~" in f, f))


def _mean(values: Iterable[float]) -> float:
    xs = [float(v) for v in values]
    return sum(xs) / len(xs) if xs else NAN


def _metric(t: TrialRecord, metric: str) -> float:
    # A diverged trial contributes nan, which paired() and summarize() drop.
    return float(getattr(t, metric)) if t.status == "done" else NAN


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


def share_beaten(value: float, controls: Sequence[float], higher_is_better: bool) -> float:
    """The share of `controls` that `value` does better than; ties count half; a diverged control
    (nan) counts as beaten by a finished finder. nan if the finder diverged or there are no controls.

    >>> share_beaten(0.9, [0.8, 0.9, 0.95, 0.7], higher_is_better=True)
    0.625
    >>> share_beaten(0.9, [0.95, float("nan")], higher_is_better=True)
    0.5
    """
    if not controls or math.isnan(value):
        return NAN
    sign = 1.0 if higher_is_better else -1.0
    return sum(
        1.0 if math.isnan(c) or sign * (value - c) > 0 else 0.5 if value == c else 0.0 for c in controls
    ) / len(controls)


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
                params=_mean(t.params for t in ts),
                flops=_mean(t.flops for t in ts),
                node_sparsity=_mean(t.node_sparsity for t in ts),
                weight_sparsity=_mean(t.weight_sparsity for t in ts),
                search_candidates=_mean(t.search.candidates for t in ts),
                search_steps=_mean(t.search.steps for t in ts),
                search_seconds=_mean(t.search.seconds for t in ts),
                wall_seconds=_mean(t.wall_seconds for t in ts),
                effective_sparsity=_mean(t.effective_sparsity for t in ts),
                search_flops=_mean(t.search.flops for t in ts),
                n_collapsed=sum(t.collapsed for t in ts),
            )
        )
    return cells


def _compare(
    trials: Sequence[TrialRecord],
    control: str,
    control_of: Callable[[TrialRecord], tuple[int, float]],
    metrics: Sequence[str],
    alpha: float,
) -> list[Comparison]:
    # (finder, seed, sparsity) -> its trials; (seed, sparsity) -> the control's trials there
    cells: dict[tuple[str, int, float], list[TrialRecord]] = {}
    for t in trials:
        cells.setdefault((t.arm, t.seed, t.sparsity), []).append(t)
    ctrl = {(seed, s): ts for (f, seed, s), ts in cells.items() if f == control}
    if not ctrl:
        return []  # no control in this run: nothing to pair with (the report says so)
    # against dense every other arm (random included) is compared; against random, the finders
    finders = [f for f in finder_order(t.arm for t in trials) if f not in {DENSE, control}]
    out: list[Comparison] = []
    for finder in finders:
        sparsities = sorted({t.sparsity for t in trials if t.arm == finder})
        for metric in metrics:
            rows = []
            for s in sparsities:
                own = sorted((seed, ts) for (f, seed, ts_), ts in cells.items() if f == finder and ts_ == s)
                pairs = [(ts, ctrl[control_of(ts[0])]) for _, ts in own if control_of(ts[0]) in ctrl]
                mine = [_mean_done(a, metric) for a, _ in pairs]
                theirs = [_mean_done(b, metric) for _, b in pairs]
                res = paired(mine, theirs)
                beats = [share_beaten(m, [_metric(c, metric) for c in b], METRICS[metric]) for m, (_, b) in zip(mine, pairs)]
                n_ctrl = [sum(c.status == "done" for c in b) for _, b in pairs]
                rows.append((s, res, len(pairs), _mean(n_ctrl), _mean(x for x in beats if not math.isnan(x))))
            # Holm across the sparsities of one finder, metric and control: one family of tests.
            adjusted = holm([r[1].p for r in rows])
            for (s, res, n_seeds, n_ctrl, beats), p_adj in zip(rows, adjusted):
                v = verdict(res, p_adj, alpha, higher_is_better=METRICS[metric])
                out.append(Comparison(finder, s, control, metric, res, p_adj, v, n_seeds, n_seeds - res.n, n_ctrl, beats))
    return out


def _mean_done(ts: Sequence[TrialRecord], metric: str) -> float:
    """Mean of `metric` over the finished trials of one seed's cell; nan if none finished."""
    vals = [_metric(t, metric) for t in ts if t.status == "done"]
    return sum(vals) / len(vals) if vals else NAN


def compare_to_random(trials: Sequence[TrialRecord], alpha: float = 0.05) -> list[Comparison]:
    """Each finder other than dense and random against random at the same sparsity and seed.

    Empty when the run has no random trials (the report then says so).

    >>> comps = compare_to_random(Store("runs/x", create=False).trials())  # doctest: +SKIP
    >>> comps[0].verdict  # doctest: +SKIP
    'no significant difference'
    """
    return _compare(trials, CONTROL, lambda t: (t.seed, t.sparsity), list(METRICS), alpha)


def gap_to_dense(trials: Sequence[TrialRecord], alpha: float = 0.05) -> list[Comparison]:
    """Final test accuracy of each non-dense finder (random included) minus the dense parent's.

    Paired by seed: the dense parent trained from the same init and data order.

    >>> gaps = gap_to_dense(trials)  # doctest: +SKIP
    >>> [g.result.mean_diff for g in gaps]  # doctest: +SKIP
    [-0.004, -0.021]
    """
    dense_sparsity = {t.seed: t.sparsity for t in trials if t.finder == DENSE}
    return _compare(trials, DENSE, lambda t: (t.seed, dense_sparsity.get(t.seed, NAN)), ["final_test_acc"], alpha)


def compare_to_checks(trials: Sequence[TrialRecord], alpha: float = 0.05) -> list[Comparison]:
    """Each finder against each of its sanity checks (`control` is the check's arm, e.g.
    "snip~shuffle"): final test accuracy of finder − check, paired by seed, Holm across sparsities.

    >>> [(c.finder, c.control) for c in compare_to_checks(trials)]  # doctest: +SKIP
    [('snip', 'snip~shuffle')]
    """
    out: list[Comparison] = []
    for arm in finder_order(t.arm for t in trials):
        if "~" in arm:
            base = arm.split("~")[0]
            pair = [t for t in trials if t.arm in (base, arm)]
            out += _compare(pair, arm, lambda t: (t.seed, t.sparsity), ["final_test_acc"], alpha)
    return out


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


def fmt_ci(s: Summary | Paired, spec: str = ".2f", scale: float = 1.0) -> str:
    """A 95% interval as "[lo, hi]", or "n/a" when it is undefined (fewer than two values)."""
    if math.isnan(s.ci_low):
        return "n/a"
    return f"[{format(s.ci_low * scale, spec)}, {format(s.ci_high * scale, spec)}]"


def fmt_mean_sd(s: Summary, spec: str = ".2f", scale: float = 1.0) -> str:
    """ "mean ± sd", or just the mean when the sd is undefined."""
    if math.isnan(s.sd):
        return fmt(s.mean, spec, scale)
    return f"{format(s.mean * scale, spec)} ± {format(s.sd * scale, spec)}"
