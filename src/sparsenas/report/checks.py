"""The report's sanity-check and layer-collapse sections: each finder against its own checks
(shuffle, reinit, invert), and the cells whose masks emptied a layer or cut the input off."""

from __future__ import annotations

from typing import Sequence

from ..store.records import TrialRecord
from . import figures
from .markup import Block
from .tables import Cell, Comparison, compare_to_checks, fmt, fmt_ci, fmt_p

# what a finder beating (or not beating) each check says about its mask
MEANING = {
    "shuffle": "which units it keeps matters, not only how many per layer",
    "reinit": "the mask needs its own initial values",
    "invert": "its scores rank units, not just pick a layer's share",
}


def _row(c: Comparison) -> list[str]:
    check = c.control.split("~")[1]
    d = fmt(c.result.mean_diff, "+.2f", 100)
    found = "finder better" if c.verdict == "better" else "check better" if c.verdict == "worse" else c.verdict
    return [c.finder, check, f"{c.sparsity:g}", d if d == "n/a" else d + " pp", fmt_ci(c.result, "+.2f", 100),
            fmt_p(c.p_holm), str(c.result.n), found]


def blocks(trials: Sequence[TrialRecord], cells: Sequence[Cell], label: str) -> list[Block]:
    """The "Sanity checks" and "Layer collapse" sections (empty when the run has neither)."""
    out: list[Block] = []
    comps = compare_to_checks(trials)
    if comps:
        out += [
            ("h2", "Sanity checks (finder − check, paired by seed)"),
            ("p", "Each check is trained like every trial. shuffle: every layer keeps as many weights (nodes) as the "
                  "finder's mask, at random positions; reinit: the same mask from another draw of the parent's init; "
                  "invert: every layer keeps as many units as the finder's mask, its lowest-scoring ones. A finder "
                  "significantly better than its check shows that " + "; ".join(f"{k}: {v}" for k, v in MEANING.items())
                  + ". Δ is final test accuracy, Holm-adjusted across sparsities per finder and check."),
            ("table", ["finder", "check", label, "Δ finder − check", "95% CI", "Holm p", "n", "verdict"],
             [_row(c) for c in comps]),
        ]
    collapsed = [c for c in cells if c.n_collapsed]
    if any(t.space == "weight" for t in trials):
        out.append(("h2", "Layer collapse"))
        if collapsed:
            out += [
                ("p", "A mask has collapsed when it empties a layer or leaves no path from input to output: the network "
                      "then computes a constant and trains to chance accuracy. Cells with collapsed trials:"),
                ("ul", [f"{c.finder} at {label} {c.sparsity:g}: {c.n_collapsed} of {c.n_trials} trials collapsed" for c in collapsed]),
            ]
        else:
            out.append(("p", "No mask of this run emptied a layer or cut the input off from the output."))
    return out


def figure(cells: Sequence[Cell], label: str) -> list[Block]:
    """The sanity-check figure, when the run has checks."""
    if not any("~" in c.finder for c in cells):
        return []
    return [("fig", "checks_vs_sparsity.png", figures.checks_vs_sparsity(cells, label),
             f"Each finder beside its sanity checks and the random control: final test accuracy vs {label} (mean, 95% CI band).")]
