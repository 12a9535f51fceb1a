"""Paired comparisons: each finder against the random control, the dense parent and its own
sanity checks, paired by seed, with Holm-adjusted p-values and plain-words verdicts.

Where a cell holds several trials of one seed (the `--controls` random controls), they are averaged
within the seed first: trials of one seed share the init and the data order, so the seed, not the
trial, is the independent unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..errors import SparsenasError
from ..store.records import TrialRecord
from .stats import Paired, holm, paired, verdict
from .tables import CONTROL, CONTROLS, DENSE, NAN, STARTS, finder_order, mean_or_nan

# The Holm families a verdict can follow, and what each corrects across (the report says which).
FAMILIES: dict[str, str] = {
    "finder": "within each finder and metric, across its sparsities",
    "table": "across every row of the verdict table",
}


def check_family(family: str) -> str:
    """`family` itself when it names a Holm family (a key of FAMILIES), else a one-line user error.

    >>> check_family("table")
    'table'
    """
    if family not in FAMILIES:
        raise SparsenasError(f"unknown Holm family '{family}'; choose one of: {', '.join(FAMILIES)}")
    return family


@dataclass(frozen=True)
class Comparison:
    """A finder against a control (random at the same sparsity, or the dense parent), paired by seed."""

    finder: str
    sparsity: float
    control: str  # "random" or "dense"
    metric: str  # "final_test_acc" or "min_val_loss_epoch"
    result: Paired  # differences finder - control (per-seed means on either side)
    p_holm: float  # Holm-adjusted in the "finder" family: across the sparsities of this finder, metric and control
    verdict: str
    n_seeds: int  # seeds present on both sides
    n_excluded: int  # of those, seeds dropped because either side diverged
    controls: float = 1.0  # finished control trials per seed, on average
    beats: float = NAN  # share of its seed's controls the finder does better than (ties count half), mean over seeds
    # Holm-adjusted in the "table" family: across every comparison compare_to_random returned (nan elsewhere)
    p_table: float = NAN
    family: str = "finder"  # the family whose adjusted p the verdict follows
    # the sanity check `finder` is an arm of ("shuffle" for "snip~shuffle"), "" for a finder: told by
    # the trials, since a user's finder name may hold a "~" too
    check: str = ""

    @property
    def p_adjusted(self) -> float:
        """The adjusted p the verdict follows: `p_holm` in the "finder" family, `p_table` in the "table" one."""
        return self.p_table if self.family == "table" else self.p_holm


# The metrics compared, and whether a larger value is the better one.
METRICS: dict[str, bool] = {"final_test_acc": True, "min_val_loss_epoch": False}


def _metric(t: TrialRecord, metric: str) -> float:
    # A diverged trial contributes nan, which paired() and summarize() drop.
    return float(getattr(t, metric)) if t.status == "done" else NAN


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
    return sum(1.0 if math.isnan(c) or sign * (value - c) > 0 else 0.5 if value == c else 0.0 for c in controls) / len(controls)


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
    # against dense every other arm (the controls included) is compared; against a control, the finders
    skip = {DENSE, control} | (set() if control == DENSE else set(CONTROLS))
    finders = [f for f in finder_order(t.arm for t in trials) if f not in skip]
    out: list[Comparison] = []
    for finder in finders:
        sparsities = sorted({t.sparsity for t in trials if t.arm == finder})
        check = next(t.check for t in trials if t.arm == finder)
        for metric in metrics:
            rows = []
            for s in sparsities:
                own = sorted((seed, ts) for (f, seed, ts_), ts in cells.items() if f == finder and ts_ == s)
                pairs = [(ts, ctrl[control_of(ts[0])]) for _, ts in own if control_of(ts[0]) in ctrl]
                mine = [_mean_done(a, metric) for a, _ in pairs]
                theirs = [_mean_done(b, metric) for _, b in pairs]
                res = paired(mine, theirs)
                shares = [share_beaten(m, [_metric(c, metric) for c in b], METRICS[metric]) for m, (_, b) in zip(mine, pairs)]
                done = [sum(c.status == "done" for c in b) for _, b in pairs]
                rows.append((s, res, len(pairs), mean_or_nan(done), mean_or_nan(x for x in shares if not math.isnan(x))))
            # Holm across the sparsities of one finder, metric and control: one family of tests.
            adjusted = holm([r[1].p for r in rows])
            for (s, res, n_seeds, n_ctrl, beats), p_adj in zip(rows, adjusted):
                v = verdict(res, p_adj, alpha, higher_is_better=METRICS[metric])
                out.append(Comparison(finder, s, control, metric, res, p_adj, v, n_seeds, n_seeds - res.n, n_ctrl, beats, check=check))
    return out


def _mean_done(ts: Sequence[TrialRecord], metric: str) -> float:
    """Mean of `metric` over the finished trials of one seed's cell; nan if none finished."""
    vals = [_metric(t, metric) for t in ts if t.status == "done"]
    return sum(vals) / len(vals) if vals else NAN


def compare_to_random(trials: Sequence[TrialRecord], alpha: float = 0.05, family: str = "finder") -> list[Comparison]:
    """Each finder other than dense and random against random at the same sparsity and seed: the
    rows of the verdict table, each with its p Holm-adjusted in both families (`p_holm`, `p_table`)
    and its verdict taken from the one `family` names ("finder" or "table", see FAMILIES).

    Empty when the run has no random trials (the report then says so).

    >>> comps = compare_to_random(Store("runs/x", create=False).trials(), family="table")  # doctest: +SKIP
    >>> comps[0].verdict, comps[0].p_adjusted == comps[0].p_table  # doctest: +SKIP
    ('no significant difference', True)
    """
    check_family(family)
    # a start arm trains for its own budget (its convergence epoch is no peer of the others'): the
    # starts section compares it with random, and it joins no Holm family of this table
    trials = [t for t in trials if t.check not in STARTS]
    comps = _compare(trials, CONTROL, lambda t: (t.seed, t.sparsity), list(METRICS), alpha)
    # the table family: one Holm correction over every row, whichever finder, metric or check it is
    table = holm([c.result.p for c in comps])
    return [
        replace(
            c,
            p_table=p,
            family=family,
            verdict=verdict(c.result, p if family == "table" else c.p_holm, alpha, higher_is_better=METRICS[c.metric]),
        )
        for c, p in zip(comps, table)
    ]


def family_sizes(comps: Sequence[Comparison]) -> dict[str, list[int]]:
    """How many tests (rows with a p-value) each Holm family of a verdict table holds: one count per
    (finder, metric) under "finder", the whole table's under "table".

    >>> family_sizes([])
    {'finder': [], 'table': []}
    """
    per: dict[tuple[str, str, str], int] = {}
    for c in comps:
        if not math.isnan(c.result.p):
            per[(c.finder, c.metric, c.control)] = per.get((c.finder, c.metric, c.control), 0) + 1
    total = sum(per.values())
    return {"finder": list(per.values()), "table": [total] if total else []}


def gap_to_dense(trials: Sequence[TrialRecord], alpha: float = 0.05) -> list[Comparison]:
    """Final test accuracy of each non-dense finder (random included) minus the dense parent's.

    Paired by seed: the dense parent trained from the same init and data order.

    >>> gaps = gap_to_dense(trials)  # doctest: +SKIP
    >>> [g.result.mean_diff for g in gaps]  # doctest: +SKIP
    [-0.004, -0.021]
    """
    dense_sparsity = {t.seed: t.sparsity for t in trials if t.finder == DENSE}
    return _compare(trials, DENSE, lambda t: (t.seed, dense_sparsity.get(t.seed, NAN)), ["final_test_acc"], alpha)


def compare_to_controls(trials: Sequence[TrialRecord], alpha: float = 0.05) -> dict[str, list[Comparison]]:
    """Final test accuracy of each finder against every random control the run holds, by the way
    the control allocates its sparsity over the layers: "uniform" (`random`: every layer alike),
    "erk" (`random-erk`: Erdos-Renyi-Kernel densities, weight space) and "matched" (the finder's own
    per-layer counts at random positions: its `shuffle` trials). Paired by seed, Holm across the
    finder's sparsities per control; a control the run lacks has no entry.

    >>> sorted(compare_to_controls(trials))  # doctest: +SKIP
    ['erk', 'matched', 'uniform']
    """
    by_seed = lambda t: (t.seed, t.sparsity)  # noqa: E731
    out = {
        kind: [c for c in _compare(trials, control, by_seed, ["final_test_acc"], alpha) if not c.check]
        for kind, control in (("uniform", CONTROL), ("erk", "random-erk"))
    }
    out["matched"] = [c for c in compare_to_checks(trials, alpha) if c.control.endswith("~shuffle")]
    return {k: v for k, v in out.items() if v}


def compare_to_checks(trials: Sequence[TrialRecord], alpha: float = 0.05) -> list[Comparison]:
    """Each finder against each of its sanity checks (`control` is the check's arm, e.g.
    "snip~shuffle"): final test accuracy of finder − check, paired by seed, Holm across sparsities.

    >>> [(c.finder, c.control) for c in compare_to_checks(trials)]  # doctest: +SKIP
    [('snip', 'snip~shuffle')]
    """
    out: list[Comparison] = []
    for arm in finder_order(t.arm for t in trials):
        if "~" in arm and arm.split("~")[1] not in STARTS:  # a start is no check: report.starts compares those
            base = arm.split("~")[0]
            pair = [t for t in trials if t.arm in (base, arm)]
            out += _compare(pair, arm, lambda t: (t.seed, t.sparsity), ["final_test_acc"], alpha)
    return out
