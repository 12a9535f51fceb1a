"""The report's "Hardware-aware search" section: the nsga2 front against random nets of the same sizes.

Each seed's front members (trained in full like every trial) and their same-size random twins are
two sets of points (cost, final test accuracy). Their quality is the hypervolume each set dominates in
the plane of test error and cost relative to the seed's dense parent, up to the reference point
(error 1, cost 1 = the dense parent's), computed with pymoo's `HV`; a point costlier than the dense
parent adds nothing. The hypervolumes are compared paired by seed (t-test; a sign test when the
differences are all equal), as every other comparison in the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..store.records import TrialRecord
from .figures import _png
from .markup import Block
from .stats import paired
from .tables import DENSE, fmt, fmt_p

UNITS = {"latency": ("latency_ms", "batch-1 latency (ms)"), "params": ("params", "parameters"), "flops": ("flops", "FLOPs per sample")}


def cost_name(trials: Sequence[TrialRecord]) -> str:
    """The cost objective of the run's front trials (latency when the spec does not say)."""
    for t in trials:
        objs = t.spec.get("options", {}).get("objectives") if t.slot >= 0 and t.finder != "random" else None
        if objs:
            return objs[1]
    return "latency"


def cost_of(t: TrialRecord, name: str) -> float:
    return float(getattr(t, UNITS[name][0]))


def hypervolume(points: Sequence[tuple[float, float]], ref: tuple[float, float] = (1.0, 1.0)) -> float:
    """Area dominated by `points` (objectives to minimize) up to `ref`; points beyond `ref` add nothing.

    >>> hypervolume([(0.5, 0.5)]), hypervolume([(0.5, 0.5), (0.25, 0.75)]), hypervolume([(2.0, 0.1)])
    (0.25, 0.3125, 0.0)
    """
    from pymoo.indicators.hv import HV

    inside = [p for p in points if all(math.isfinite(v) for v in p) and p[0] < ref[0] and p[1] < ref[1]]
    if not inside:
        return 0.0
    return float(HV(ref_point=np.array(ref))(np.array(inside, dtype=float)))


def _sets(trials: Sequence[TrialRecord]) -> dict[int, dict[str, list[TrialRecord]]]:
    out: dict[int, dict[str, list[TrialRecord]]] = {}
    for t in trials:
        if t.slot >= 0:
            arm = "random" if t.finder == "random" else "front"
            out.setdefault(t.seed, {"front": [], "random": []})[arm].append(t)
    for d in out.values():
        for v in d.values():
            v.sort(key=lambda t: t.slot)
    return out


def seed_hypervolumes(trials: Sequence[TrialRecord]) -> list[tuple[int, float, float]]:
    """(seed, front HV, random HV) for every seed with a dense trial, costs relative to dense.

    >>> seed_hypervolumes([])
    []
    """
    name = cost_name(trials)
    dense = {t.seed: t for t in trials if t.finder == DENSE and t.status == "done"}
    rows = []
    for seed, arms in sorted(_sets(trials).items()):
        if seed not in dense or not cost_of(dense[seed], name) > 0:
            continue
        ref_cost = cost_of(dense[seed], name)
        # only slots whose member and twin are both stored (a run stopped between them is not scored
        # as if the missing twin had contributed nothing)
        both = {t.slot for t in arms["front"]} & {t.slot for t in arms["random"]}

        def points(ts: list[TrialRecord]) -> list[tuple[float, float]]:
            return [(1.0 - t.final_test_acc, cost_of(t, name) / ref_cost) for t in ts if t.status == "done" and t.slot in both]

        rows.append((seed, hypervolume(points(arms["front"])), hypervolume(points(arms["random"]))))
    return rows


def figure(trials: Sequence[TrialRecord]) -> bytes:
    name = cost_name(trials)
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    # Any: matplotlib's keyword arguments, not a mapping of str that could fill `plot`'s scalex
    styles: dict[str, dict[str, Any]] = {"front": dict(color="C0", marker="o"), "random": dict(color="C1", marker="s", mfc="none")}
    for seed, arms in sorted(_sets(trials).items()):
        for arm, style in styles.items():
            pts = sorted((cost_of(t, name), 100 * t.final_test_acc) for t in arms[arm] if t.status == "done")
            if not pts:
                continue
            label = ("nsga2 front" if arm == "front" else "random, same sizes") if seed == min(_sets(trials)) else None
            ax.plot(*zip(*pts), ls="none", ms=6, alpha=0.85, label=label, **style)
            # the seed's non-dominated points joined as a staircase: its attained front
            best, stairs = -math.inf, []
            for c, a in pts:
                if a > best:
                    stairs.append((c, a))
                    best = a
            ax.step(*zip(*stairs), where="post", color=style["color"], alpha=0.35, lw=1)
    dense = [(cost_of(t, name), 100 * t.final_test_acc) for t in trials if t.finder == DENSE and t.status == "done"]
    if dense:
        ax.plot(*zip(*dense), ls="none", marker="*", ms=11, color="black", label="dense parent")
    ax.set_xlabel(UNITS[name][1])
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("Hardware-aware search: front vs random nets of the same sizes (one staircase per seed)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def blocks(trials: Sequence[TrialRecord]) -> list[Block]:
    """Tables and figure of the hardware-aware search; nothing when the run has no front trials."""
    sets = _sets(trials)
    if not sets:
        return []
    name = cost_name(trials)
    unit = UNITS[name][1]
    hvs = seed_hypervolumes(trials)
    out: list[Block] = [
        ("h2", "Hardware-aware search (nsga2: accuracy vs " + name + ")"),
        (
            "p",
            "NSGA-II searched per-layer widths for a low proxy error and a low " + unit + "; the members of its "
            "front were trained in full, each beside a random sub-network with the same number of nodes (spread "
            "over the layers in proportion to their widths). Hypervolume: the area each set of trained nets "
            "dominates in the plane (test error, "
            + name
            + " / dense parent's "
            + name
            + "), up to (1, 1); higher is better."
            + (
                " Latency is the measured batch-1 forward time of each trained sub-network on the run's device, so it "
                "carries the machine's timing noise."
                if name == "latency"
                else ""
            ),
        ),
    ]
    if hvs:
        p = paired([h[1] for h in hvs], [h[2] for h in hvs])
        rows = [[str(s), fmt(f, ".4f"), fmt(r, ".4f"), fmt(f - r, "+.4f")] for s, f, r in hvs]
        rows.append(
            [
                "mean",
                fmt(float(np.mean([h[1] for h in hvs])), ".4f"),
                fmt(float(np.mean([h[2] for h in hvs])), ".4f"),
                f"{fmt(p.mean_diff, '+.4f')} [{fmt(p.ci_low, '+.4f')}, {fmt(p.ci_high, '+.4f')}], p = {fmt_p(p.p)} (n = {p.n})",
            ]
        )
        out.append(("table", ["seed", "hypervolume, nsga2 front", "hypervolume, random same sizes", "front − random"], rows))
    elif any(t.finder == DENSE and t.status == "done" for t in trials):
        out.append(
            (
                "p",
                f"The dense trials have no {name} recorded (trained before this run's hardware-aware search); "
                "train them again in a new --out directory to get hypervolumes.",
            )
        )
    else:
        out.append(("p", "No seed has a finished dense trial to scale the costs by: add 'dense' to the finders to get hypervolumes."))
    rows = []
    for seed, arms in sorted(sets.items()):
        twins = {t.slot: t for t in arms["random"]}
        for f in arms["front"]:
            r = twins.get(f.slot)
            rows.append(
                [
                    str(seed),
                    str(f.slot),
                    "-".join(map(str, f.kept_nodes)),
                    fmt(f.sparsity, ".3f"),
                    fmt(cost_of(f, name), ".4g"),
                    fmt(f.final_test_acc, ".2f", 100),
                    "-".join(map(str, r.kept_nodes)) if r else "n/a",
                    fmt(cost_of(r, name), ".4g") if r else "n/a",
                    fmt(r.final_test_acc, ".2f", 100) if r else "n/a",
                    fmt(f.final_test_acc - r.final_test_acc, "+.2f", 100) if r else "n/a",
                ]
            )
    out += [
        ("p", "Every trained front member and its random twin (test accuracy in %, Δ in percentage points):"),
        (
            "table",
            [
                "seed",
                "slot",
                "nsga2 widths",
                "node sparsity",
                f"nsga2 {name}",
                "nsga2 acc",
                "random widths",
                f"random {name}",
                "random acc",
                "Δ acc",
            ],
            rows,
        ),
        (
            "fig",
            "pareto.png",
            figure(trials),
            f"Final test accuracy vs {unit}: each seed's trained nsga2 front (filled) and "
            "random nets of the same sizes (hollow), staircases joining each seed's "
            "non-dominated points; star: dense parent.",
        ),
    ]
    return out
