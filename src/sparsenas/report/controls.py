"""The report's section on random controls by allocation: how much of a finder's margin over random
is left against a random control that spreads its sparsity over the layers as well as the finder.

Liu et al. (ICLR 2022, "The Unreasonable Effectiveness of Random Pruning") show that random masks
with good per-layer ratios (ERK, Evci et al. 2020) close much of the gap to dense, so a control with
uniform per-layer counts flatters a finder whose allocation differs. Three controls answer it:
uniform (`random`, the verdict table's), ERK (`random-erk`, weight space) and matched (the finder's
own per-layer counts at random positions: its `shuffle` trials, `--checks shuffle`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..store.records import TrialRecord
from .compare import Comparison, compare_to_controls
from .markup import Block
from .tables import CONTROLS, DENSE, Cell, fmt, fmt_mean_sd

HEADING = "Margin over random, by the control's allocation"

# each control kind: its column header, and what it is in words
KINDS = {
    "uniform": ("Δ vs uniform", "random (uniform: every layer keeps the same share)"),
    "erk": ("Δ vs ERK", "random-erk (Erdos-Renyi-Kernel per-layer densities, the same total)"),
    "matched": ("Δ vs matched", "matched (the finder's own per-layer counts at random positions: its shuffle trials)"),
}


def _mark(c: Comparison | None) -> str:
    # "+1.23*": difference in pp, * when the Holm-adjusted verdict is significant; "—": no comparison
    if c is None:
        return "—"
    d = fmt(c.result.mean_diff, "+.2f", 100)
    return d + ("*" if c.verdict in ("better", "worse") else "")


def _survival(finder: str, kinds: Sequence[str], at: dict[tuple[str, str, float], Comparison]) -> str:
    # "snip beats uniform random at 3 of 4 sparsities (0.9, 0.95, 0.98); of those, ERK random at 1 (0.9), matched at 0"
    mine = sorted({s for (k, f, s) in at if f == finder and k == "uniform"})
    wins = [s for s in mine if at[("uniform", finder, s)].verdict == "better"]
    head = f"{finder} beats uniform random at {len(wins)} of {len(mine)} sparsities" + (
        f" ({', '.join(f'{s:g}' for s in wins)})" if wins else ""
    )
    if not wins:
        return head
    kept = []
    for k in kinds:
        if k == "uniform":
            continue
        held = [s for s in wins if (c := at.get((k, finder, s))) is not None and c.verdict == "better"]
        asked = [s for s in wins if (k, finder, s) in at]
        kept.append(f"{k} random at {len(held)} of {len(asked)}" + (f" ({', '.join(f'{s:g}' for s in held)})" if held else ""))
    return head + "; of those, it still beats " + ", ".join(kept)


def blocks(trials: Sequence[TrialRecord], cells: Sequence[Cell], label: str) -> list[Block]:
    """The "Margin over random, by the control's allocation" section; empty unless the run holds an
    ERK or a matched control beside the uniform one.

    >>> blocks([], [], "node sparsity")
    []
    """
    comps = compare_to_controls(trials)
    if not ({"erk", "matched"} & set(comps)):
        return []
    kinds = [k for k in KINDS if k in comps]
    at = {(k, c.finder, c.sparsity): c for k, cs in comps.items() for c in cs}
    rows = []
    finders: list[str] = []
    for cell in cells:
        if "~" in cell.finder or cell.finder in (DENSE, *CONTROLS):
            continue
        if cell.finder not in finders:
            finders.append(cell.finder)
        rows.append(
            [
                cell.finder,
                f"{cell.sparsity:g}",
                fmt_mean_sd(cell.final_acc, ".2f", 100),
                *[_mark(at.get((k, cell.finder, cell.sparsity))) for k in kinds],
            ]
        )
    vs_uniform = {f for (k, f, _) in at if k == "uniform"}
    control_acc = [
        f"{name}: " + ", ".join(f"{c.sparsity:g}: {fmt_mean_sd(c.final_acc, '.2f', 100)}" for c in cells if c.finder == name)
        for name in CONTROLS
        if any(c.finder == name for c in cells)
    ]
    return [
        ("h2", HEADING),
        (
            "p",
            "Final test accuracy (%, mean ± sd across seeds) and the finder minus each random control, in pp, paired by "
            "seed (* Holm-adjusted p < 0.05 across the finder's sparsities, per control). The controls: "
            + "; ".join(KINDS[k][1] for k in kinds)
            + ". A margin that holds against uniform random but not against a control with the finder's own per-layer "
            "counts came from how many units each layer keeps, not which. Control accuracy: " + "; ".join(control_acc) + ".",
        ),
        ("table", ["finder", label, "test acc %", *[KINDS[k][0] for k in kinds]], rows),
    ] + ([("ul", [_survival(f, kinds, at) for f in finders if f in vs_uniform])] if vs_uniform else [])
