"""The report's sanity-check and layer-collapse sections: each finder against its own checks
(shuffle, reinit, invert), and the cells whose masks emptied a layer or cut the input off."""

from __future__ import annotations

from collections.abc import Sequence

from ..store.records import TrialRecord
from . import figures
from .compare import FAMILIES, Comparison, compare_to_checks, compare_to_random
from .markup import Block
from .tables import CONTROL, CONTROLS, DENSE, STARTS, UNIFORM, Cell, fmt, fmt_ci, fmt_mean_sd, fmt_p

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
    return [
        c.finder,
        check,
        f"{c.sparsity:g}",
        d if d == "n/a" else d + " pp",
        fmt_ci(c.result, "+.2f", 100),
        fmt_p(c.p_holm),
        str(c.result.n),
        found,
    ]


def _mark(c: Comparison | None) -> str:
    """A difference in pp with its Holm verdict: '+1.23*' when significant at 0.05, '—' when absent."""
    if c is None:
        return "—"
    d = fmt(c.result.mean_diff, "+.2f", 100)
    return d + ("*" if c.verdict in ("better", "worse") else "")


def glance(trials: Sequence[TrialRecord], cells: Sequence[Cell], label: str, family: str = "finder") -> list[Block]:
    """One row per finder and sparsity: accuracy, the difference to random (marked by the verdict in
    the Holm `family` the verdict table follows) and to each of its checks.

    >>> glance([], [], "node sparsity")
    []
    """
    present = {t.check for t in trials if t.check and t.check not in STARTS}  # starts: report.starts
    checks = [k for k in MEANING if k in present] + sorted(present - set(MEANING))
    if not checks:
        return []
    vs_random = {(c.finder, c.sparsity): c for c in compare_to_random(trials, family=family) if c.metric == "final_test_acc"}
    vs_check = {(c.finder, c.control.split("~")[1], c.sparsity): c for c in compare_to_checks(trials)}
    rows = []
    for cell in cells:
        if "~" in cell.finder or cell.finder in (DENSE, *CONTROLS):
            continue
        rows.append(
            [
                cell.finder,
                f"{cell.sparsity:g}",
                fmt_mean_sd(cell.final_acc, ".2f", 100),
                _mark(vs_random.get((cell.finder, cell.sparsity))),
                *[_mark(vs_check.get((cell.finder, k, cell.sparsity))) for k in checks],
                f"{cell.n_collapsed}/{cell.n_trials}",
            ]
        )
    random_acc = {c.sparsity: fmt_mean_sd(c.final_acc, ".2f", 100) for c in cells if c.finder == CONTROL}
    return [
        ("h2", "Finders at a glance"),
        (
            "p",
            "Final test accuracy (%, mean ± sd across seeds) and paired differences in pp: the finder minus the "
            f"random control ({UNIFORM}), and the finder minus each of its sanity checks (* Holm-adjusted p < 0.05: against random "
            f"adjusted {FAMILIES[family]}, against a check across the finder's sparsities; details in the tables "
            "below). Random control: " + ", ".join(f"{s:g}: {a}" for s, a in sorted(random_acc.items())) + ".",
        ),
        ("table", ["finder", label, "test acc %", "Δ vs random", *[f"Δ vs {k}" for k in checks], "collapsed"], rows),
    ]


def blocks(trials: Sequence[TrialRecord], cells: Sequence[Cell], label: str) -> list[Block]:
    """The "Sanity checks" and "Layer collapse" sections (empty when the run has neither)."""
    out: list[Block] = []
    comps = compare_to_checks(trials)
    if comps:
        out += [
            ("h2", "Sanity checks (finder − check, paired by seed)"),
            (
                "p",
                "Each check is trained like every trial. shuffle: every layer keeps as many weights (nodes) as the "
                "finder's mask, at random positions; reinit: the same mask from another draw of the parent's init; "
                "invert: every layer keeps as many units as the finder's mask, its lowest-scoring ones. A finder "
                "significantly better than its check shows that "
                + "; ".join(f"{k}: {v}" for k, v in MEANING.items())
                + ". Δ is final test accuracy, Holm-adjusted across sparsities per finder and check.",
            ),
            ("table", ["finder", "check", label, "Δ finder − check", "95% CI", "Holm p", "n", "verdict"], [_row(c) for c in comps]),
        ]
    collapsed = [c for c in cells if c.n_collapsed]
    if any(t.space == "weight" for t in trials):
        out.append(("h2", "Layer collapse"))
        if collapsed:
            out += [
                (
                    "p",
                    "A mask has collapsed when it leaves no path from input to output (an emptied layer of a chain leaves none): the network "
                    "then computes a constant and trains to chance accuracy. Cells with collapsed trials:",
                ),
                ("ul", [f"{c.finder} at {label} {c.sparsity:g}: {c.n_collapsed} of {c.n_trials} trials collapsed" for c in collapsed]),
            ]
        else:
            out.append(("p", "No mask of this run cut the input off from the output."))
    return out


def figure(cells: Sequence[Cell], label: str) -> list[Block]:
    """The sanity-check figure, when the run has checks or other starts."""
    if not any("~" in c.finder for c in cells):
        return []
    return [
        (
            "fig",
            "checks_vs_sparsity.png",
            figures.checks_vs_sparsity(cells, label),
            f"Each finder beside its sanity checks and other starts, and the random control: final test accuracy vs {label} (mean, 95% CI band).",
        )
    ]
