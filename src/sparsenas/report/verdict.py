"""The report's answer: the one-sentence headline, the verdict lines and the verdict table, all
worded from the same comparisons against random (compare.py), so none can say what another does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ..store.records import TrialRecord
from . import controls
from .compare import FAMILIES, Comparison, compare_to_controls, compare_to_random, family_sizes
from .markup import Block, to_markdown
from .source import load_trials, sparsity_label
from .tables import CONTROL, CONTROLS, UNIFORM, fmt, fmt_ci, fmt_p

_PHRASES = {
    "final_test_acc": {
        "better": "better than random",
        "worse": "worse than random",
        "no significant difference": "no significant difference from random",
        "too few seeds": "too few seeds to compare with random",
    },
    "min_val_loss_epoch": {
        "better": "converges faster than random",
        "worse": "converges slower than random",
        "no significant difference": "no significant difference from random",
        "too few seeds": "too few seeds to compare with random",
    },
}
# the headline's short name for the family its p-values come from
_SHORT = {"finder": "Holm-adjusted per finder", "table": "Holm-adjusted across the verdict table"}


def fmt_delta(c: Comparison) -> tuple[str, str]:
    """A comparison's mean difference and its 95% CI: in percentage points for accuracy, in epochs for
    convergence.

    >>> fmt_delta(comparison)  # doctest: +SKIP
    ('+3.17 pp', '[+2.45, +3.89]')
    """
    spec, scale, unit = (".2f", 100, " pp") if c.metric == "final_test_acc" else (".1f", 1, " epochs")
    d = fmt(c.result.mean_diff, "+" + spec, scale)
    return (d if d == "n/a" else d + unit), fmt_ci(c.result, "+" + spec, scale)


def _seeds(c: Comparison) -> str:
    excluded = f"; {c.n_excluded} excluded: diverged" if c.n_excluded else ""
    return f"n = {c.result.n} seed{'s' if c.result.n != 1 else ''}{excluded}"


def verdict_line(c: Comparison, label: str = "node sparsity") -> str:
    """One plain-words sentence for a comparison against random; its Holm p is the one the verdict follows.

    >>> verdict_line(comparison)  # doctest: +SKIP
    'random-search at node sparsity 0.8: no significant difference from random (Δ = -0.12 pp, 95% CI [-0.50, +0.30], Holm p = 0.61, n = 5 seeds)'
    """
    d, ci = fmt_delta(c)
    what = "" if c.metric == "final_test_acc" else ", convergence epoch"
    within = ""
    if c.controls > 1 and not math.isnan(c.beats):
        within = f"; it does better than {c.beats * 100:.0f}% of its seed's {c.controls:.3g} random controls"
    return (
        f"{c.finder} at {label} {c.sparsity:g}{what}: {_PHRASES[c.metric][c.verdict]} "
        f"(Δ = {d}, 95% CI {ci}, Holm p = {fmt_p(c.p_adjusted)}, {_seeds(c)}){within}"
    )


def verdict_rows(comps: Sequence[Comparison], label: str = "node sparsity") -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the verdict table (finder minus random, paired by seed), with the p of
    each row Holm-adjusted in both families.

    >>> verdict_rows([])[0][5:8]
    ['p', 'Holm p (finder)', 'Holm p (table)']
    """
    headers = [
        "finder",
        label,
        "metric",
        "Δ vs random",
        "95% CI",
        "p",
        "Holm p (finder)",
        "Holm p (table)",
        "n",
        "excluded",
        "controls/seed",
        "beats controls",
        "verdict",
    ]
    rows = []
    for c in comps:
        d, ci = fmt_delta(c)
        metric = "final test acc" if c.metric == "final_test_acc" else "convergence epoch"
        beats = "n/a" if math.isnan(c.beats) else f"{c.beats * 100:.0f}%"
        rows.append(
            [
                c.finder,
                f"{c.sparsity:g}",
                metric,
                d,
                ci,
                fmt_p(c.result.p),
                fmt_p(c.p_holm),
                fmt_p(c.p_table),
                str(c.result.n),
                str(c.n_excluded),
                fmt(c.controls, ".3g"),
                beats,
                c.verdict,
            ]
        )
    return headers, rows


def _tests(sizes: list[int]) -> str:
    # "2 families of 4 tests each", "3 families of 4, 4 and 2 tests", "one family of 8 tests"
    if len(sizes) == 1:
        return f"one family of {sizes[0]} test{'s' if sizes[0] != 1 else ''}"
    if len(set(sizes)) == 1:
        return f"{len(sizes)} families of {sizes[0]} test{'s' if sizes[0] != 1 else ''} each"
    return f"{len(sizes)} families of {', '.join(map(str, sizes[:-1]))} and {sizes[-1]} tests"


def family_note(comps: Sequence[Comparison]) -> str:
    """The sentence under the verdict table: each Holm family, how many tests it holds, and which
    one the verdict column follows.

    >>> family_note(compare_to_random(trials))  # doctest: +SKIP
    'Holm p (finder): adjusted within each finder and metric, across its sparsities; 2 families of 4 tests each. ...'
    """
    sizes = family_sizes(comps)
    if not sizes["table"]:
        return "No row has a p-value (fewer than 2 seeds on both sides everywhere), so no verdict is corrected for multiple tests."
    family = comps[0].family
    missing = sum(math.isnan(c.result.p) for c in comps)
    return (
        f"Holm p (finder): adjusted {FAMILIES['finder']}; {_tests(sizes['finder'])}. "
        f"Holm p (table): adjusted {FAMILIES['table']}; {_tests(sizes['table'])}. "
        + (f"Rows without a p ({missing}, fewer than 2 seeds) are in no family. " if missing else "")
        + f"The verdict column follows Holm p ({family}) at p < 0.05."
    )


def _at(cs: Sequence[Comparison], with_numbers: bool) -> str:
    # "0.8 (+1.10 pp, Holm p = 0.02) and 0.9 (...)" or "0.9 and 0.95"
    parts = [f"{c.sparsity:g}" + (f" ({fmt_delta(c)[0]}, Holm p = {fmt_p(c.p_adjusted)})" if with_numbers else "") for c in cs]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _by_finder(cs: Sequence[Comparison], with_numbers: bool) -> list[tuple[str, str]]:
    # (finder, its sparsities) in table order
    finders = list(dict.fromkeys(c.finder for c in cs))
    return [(f, _at([c for c in cs if c.finder == f], with_numbers)) for f in finders]


def headline(comps: Sequence[Comparison], label: str = "node sparsity", context: str = "In this run") -> str:
    """One plain sentence that answers the run's question (did any finder beat random sub-networks of
    the same sparsity on final test accuracy?), worded from the verdicts of the finders' rows.

    >>> headline(compare_to_random(trials), context="On digits with the mlp parent")  # doctest: +SKIP
    'On digits with the mlp parent, no finder differed significantly from random sub-networks of the same node sparsity on final test accuracy at any sparsity (n = 5 seeds, Holm-adjusted per finder).'
    """
    # the sanity checks' rows are the checks' verdicts, not a finder's: the checks tables show them
    rows = [c for c in comps if c.metric == "final_test_acc" and not c.check]
    few = [c for c in rows if c.verdict == "too few seeds"]
    sig = [c for c in rows if c.verdict in ("better", "worse")]
    compared = [c for c in rows if c not in few]
    if not compared:
        return (
            f"{context}, no finder could be compared with random sub-networks of the same {label} on final test "
            "accuracy: at every sparsity fewer than 2 seeds finished on both sides."
        )
    ns = sorted({c.result.n for c in compared})
    seeds = f"n = {ns[0]}" + (f"–{ns[-1]}" if len(ns) > 1 else "") + " seeds"
    about = f"({seeds}, {_SHORT[compared[0].family]})"
    few_text = ", ".join(f"{f} at {at}" for f, at in _by_finder(few, with_numbers=False))
    if not sig:
        where = " with enough seeds" if few else ""
        tail = f"; too few seeds to compare {few_text}" if few else ""
        return (
            f"{context}, no finder differed significantly from random sub-networks of the same {label} on final "
            f"test accuracy at any sparsity{where} {about}{tail}."
        )
    found = [f"{f} beat random at {label} {at}" for f, at in _by_finder([c for c in sig if c.verdict == "better"], True)]
    found += [f"{f} did worse than random at {label} {at}" for f, at in _by_finder([c for c in sig if c.verdict == "worse"], True)]
    nsd = len(compared) > len(sig)
    if nsd:
        tail = "; elsewhere no significant difference" + (f" or too few seeds to compare ({few_text})" if few else "")
    else:
        tail = f"; too few seeds to compare {few_text}" if few else ""
    return f"{context}, on final test accuracy against random sub-networks of the same {label} {about}, {'; '.join(found)}{tail}."


def answer(
    trials: Sequence[TrialRecord], comps: Sequence[Comparison], label: str = "node sparsity", context: str = "In this run"
) -> list[Block]:
    """The report's Answer section: the headline, then the verdict line of every finder and sparsity.

    >>> answer(trials, compare_to_random(trials))[0]  # doctest: +SKIP
    ('p', 'In this run, no finder differed significantly from random sub-networks ...')
    """
    finders = {t.finder for t in trials}
    if CONTROL not in finders:
        return [
            (
                "p",
                "This run has no 'random' trials, so no finder can be compared with the random "
                "control; add 'random' to the run's finders and run it again (finished trials are reused).",
            )
        ]
    if not comps:
        held = ", ".join(sorted(finders))
        return [("p", f"This run holds only {held}; there is no finder to compare with random.")]
    # the answer names the finders; how their sanity checks fare is in the verdict and checks tables
    acc = [verdict_line(c, label) for c in comps if c.metric == "final_test_acc" and not c.check]
    # "random" is the uniform per-layer control; a run that also holds a stronger one says which it means
    # and where the others are (the controls section is drawn only where they were compared)
    stronger = sorted({t.finder for t in trials} & set(CONTROLS[1:]))
    which: list[Block] = []
    if stronger:
        kinds = compare_to_controls(trials)
        others = ["random-erk (ERK densities)"] if "erk" in kinds else []
        others += ["the finders' own per-layer counts (their shuffle trials)"] if "matched" in kinds else []
        where = f"; against {' and '.join(others)}, see '{controls.HEADING}'" if others else ""
        which = [("p", f"Here random means {UNIFORM}{where}.")]
    conv = [verdict_line(c, label) for c in comps if c.metric == "min_val_loss_epoch" and not c.check]
    family = FAMILIES[comps[0].family]
    return [
        ("p", headline(comps, label, context)),
        *which,
        (
            "p",
            f"Final test accuracy, each finder against random sparse sub-networks ({UNIFORM}) of the same sparsity "
            f"and seed (Holm p adjusted {family}):",
        ),
        ("ul", acc),
        ("p", "Convergence (epoch of minimum validation loss; fewer is better):"),
        ("ul", conv),
    ]


def render_verdict_markdown(run_dir: str | Path, family: str = "finder") -> str:
    """Just the verdict table of a run as markdown, and the sentence naming its Holm families, e.g. to
    paste into a README; `family` as in write_report.

    >>> print(render_verdict_markdown("runs/x"))  # doctest: +SKIP
    | finder | node sparsity | metric | Δ vs random | ...
    """
    _, trials = load_trials(run_dir)
    trials = [t for t in trials if t.slot < 0]  # the report's verdict table leaves front slots out too
    comps = compare_to_random(trials, family=family)
    label = sparsity_label(trials)
    if not comps:
        return to_markdown(answer(trials, comps, label)[:1])
    lead = ("p", f"Finder − the random control with {UNIFORM}, paired by seed:")
    return to_markdown([lead, ("table", *verdict_rows(comps, label)), ("p", family_note(comps))])
