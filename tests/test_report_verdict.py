"""The report's headline sentence and its two Holm families, against the verdict table they summarize."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
from scipy import stats as st

from sparsenas.errors import SparsenasError
from sparsenas.report import Comparison, Paired, compare_to_random, holm, render_verdict_markdown, write_report
from sparsenas.report.verdict import headline
from sparsenas.store import Store

from report_fixtures import ACC, CONV, store, trial

NSD, FEW = "no significant difference", "too few seeds"


def comp(finder: str, sparsity: float, verdict: str, diff: float = 0.0, p: float = 0.5, n: int = 5) -> Comparison:
    """A final-test-accuracy row of a verdict table, with the verdict given outright."""
    if verdict == FEW:
        return Comparison(finder, sparsity, "random", "final_test_acc", Paired(1, diff, math.nan, math.nan, math.nan, math.nan),
                          math.nan, verdict, 1, 0)
    return Comparison(finder, sparsity, "random", "final_test_acc", Paired(n, diff, diff - 0.01, diff + 0.01, 3.0, p),
                      p, verdict, n, 0)


# -- the headline ---------------------------------------------------------------------------------


def test_headline_examples() -> None:
    ctx = "On digits with the mlp parent"
    assert headline([comp("rs", 0.5, NSD), comp("rs", 0.9, NSD)], context=ctx) == (
        "On digits with the mlp parent, no finder differed significantly from random sub-networks of the same node "
        "sparsity on final test accuracy at any sparsity (n = 5 seeds, Holm-adjusted per finder).")
    assert headline([comp("rs", 0.5, NSD), comp("rs", 0.9, "better", 0.012, 0.01)], context=ctx) == (
        "On digits with the mlp parent, on final test accuracy against random sub-networks of the same node sparsity "
        "(n = 5 seeds, Holm-adjusted per finder), rs beat random at node sparsity 0.9 (+1.20 pp, Holm p = 0.01); "
        "elsewhere no significant difference.")
    mixed = [comp("a", 0.5, "better", 0.02, 0.004), comp("a", 0.9, "better", 0.01, 0.03),
             comp("b", 0.5, "worse", -0.03, 0.002, n=4), comp("b", 0.9, FEW)]
    assert headline(mixed, "weight sparsity") == (
        "In this run, on final test accuracy against random sub-networks of the same weight sparsity (n = 4–5 seeds, "
        "Holm-adjusted per finder), a beat random at weight sparsity 0.5 (+2.00 pp, Holm p = 0.004) and 0.9 (+1.00 pp, "
        "Holm p = 0.03); b did worse than random at weight sparsity 0.5 (-3.00 pp, Holm p = 0.002); too few seeds to "
        "compare b at 0.9.")
    assert headline([comp("a", 0.5, FEW), comp("b", 0.5, FEW)]) == (
        "In this run, no finder could be compared with random sub-networks of the same node sparsity on final test "
        "accuracy: at every sparsity fewer than 2 seeds finished on both sides.")
    assert headline([comp("a", 0.5, NSD, n=3), comp("a", 0.9, FEW)]) == (
        "In this run, no finder differed significantly from random sub-networks of the same node sparsity on final "
        "test accuracy at any sparsity with enough seeds (n = 3 seeds, Holm-adjusted per finder); too few seeds to "
        "compare a at 0.9.")


def test_headline_ignores_convergence_and_sanity_check_rows() -> None:
    conv = Comparison("a", 0.5, "random", "min_val_loss_epoch", Paired(5, -2.0, -3.0, -1.0, -4.0, 0.001), 0.001, "better", 5, 0)
    check = replace(comp("a~shuffle", 0.5, "worse", -0.05, 0.001), check="shuffle")
    assert headline([comp("a", 0.5, NSD), conv, check]).startswith("In this run, no finder differed significantly")


def test_headline_is_true_to_every_table() -> None:
    """Every combination of verdicts over two finders at two sparsities: the sentence names each
    significant row with its own numbers under the right verb, and claims nothing the rows do not."""
    for verdicts in itertools.product(["better", "worse", NSD, FEW], repeat=4):
        _check_headline(verdicts)


def _check_headline(verdicts: tuple[str, ...]) -> None:
    cells = [("a", 0.5), ("a", 0.9), ("b", 0.5), ("b", 0.9)]
    rows = [comp(f, s, v, (-1 if v == "worse" else 1) * (0.011 + i / 1000), 0.001 * (i + 1))
            for i, ((f, s), v) in enumerate(zip(cells, verdicts))]
    text = headline(rows)
    clauses = text.split("; ")
    for r in rows:
        numbers = f"{r.sparsity:g} ({r.result.mean_diff * 100:+.2f} pp, Holm p = {r.p_holm:.3g})"
        verb = {"better": f"{r.finder} beat random", "worse": f"{r.finder} did worse than random"}.get(r.verdict)
        holding = [c for c in clauses if numbers in c]
        if verb:
            assert len(holding) == 1 and verb in holding[0], (verdicts, text)
        else:
            assert not holding, (verdicts, text)
    sig = {"better", "worse"} & set(verdicts)
    assert ("no finder differed significantly" in text) == (not sig and NSD in verdicts)
    assert ("no finder could be compared" in text) == (set(verdicts) == {FEW})
    assert ("elsewhere no significant difference" in text) == bool(sig and NSD in verdicts)
    assert ("too few seeds to compare" in text) == (FEW in verdicts and set(verdicts) != {FEW})
    if FEW in verdicts and set(verdicts) != {FEW}:
        listed = text.split("too few seeds to compare ")[1].split(" (n = ")[0].rstrip(".)").lstrip("(")
        for r in rows:
            assert (r.verdict == FEW) == (f"{r.finder} at " in listed and f"{r.sparsity:g}" in listed.split(f"{r.finder} at ")[-1].split(",")[0]), (verdicts, text)


def test_headline_opens_the_report(tmp_path: Path) -> None:
    run = store(tmp_path, list(ACC))
    paths = write_report(run)
    md, page = paths["md"].read_text(), paths["html"].read_text()
    sentence = ("On digits with the lenet-300-100 parent, on final test accuracy against random sub-networks of the same "
                "node sparsity (n = 2–3 seeds, Holm-adjusted per finder), random-search beat random at node sparsity 0.5 "
                "(+3.17 pp, Holm p = 0.00552); elsewhere no significant difference.")
    assert md.index("## Answer") < md.index(sentence) < md.index("- random-search at node sparsity 0.5")
    assert f"<p>{sentence}</p>" in page


# -- Holm families --------------------------------------------------------------------------------


def brute_holm(ps: list[float]) -> list[float]:
    """Holm's adjusted p of each hypothesis from the procedure itself: the smallest level alpha at
    which the step-down test (reject the k-th smallest p while p_(k) <= alpha / (m - k + 1))
    rejects it; 1 if none does. nan (no test) stays nan and does not count in m."""
    tests = [p for p in ps if not math.isnan(p)]
    m = len(tests)
    levels = sorted({min(1.0, (m - k) * p) for k, p in enumerate(sorted(tests))} | {1.0})

    def rejected(alpha: float) -> set[float]:
        out = set()
        for k, p in enumerate(sorted(tests)):
            if (m - k) * p > alpha:  # p > alpha / (m - k), multiplied out as the levels were
                break
            out.add(p)
        return out

    return [p if math.isnan(p) else min((a for a in levels if p in rejected(a)), default=1.0) for p in ps]


def test_holm_matches_the_step_down_procedure() -> None:
    rng = random.Random(0)
    for _ in range(300):
        ps = [rng.choice([rng.random(), rng.random() / 50, 0.02, math.nan]) for _ in range(rng.randint(1, 9))]
        expected = brute_holm(ps)
        got = holm(ps)
        assert [math.isnan(p) for p in got] == [math.isnan(p) for p in ps]
        assert [g for g in got if not math.isnan(g)] == pytest.approx([e for e in expected if not math.isnan(e)])


def test_table_family_is_holm_over_every_row() -> None:
    trials = [trial(*cell, seed, acc, conv) for cell in ACC for seed, (acc, conv) in enumerate(zip(ACC[cell], CONV[cell]))]
    comps = compare_to_random(trials, family="table")
    assert [c.p_table for c in comps] == pytest.approx(brute_holm([c.result.p for c in comps]))
    for metric in ("final_test_acc", "min_val_loss_epoch"):  # the finder family: one per finder and metric
        rows = [c for c in comps if c.metric == metric]
        assert [c.p_holm for c in rows] == pytest.approx(brute_holm([c.result.p for c in rows]))
    assert all(c.p_adjusted == c.p_table and c.family == "table" for c in comps)


def _three_finders(run: Path) -> float:
    """Three finders at one sparsity against random: only finder a differs (p about 0.013)."""
    accs = {"random": [0.90, 0.91, 0.92], "a": [0.92, 0.94, 0.945], "b": [0.91, 0.90, 0.92], "c": [0.905, 0.915, 0.915]}
    with Store(run) as s:
        s.set_spec({"dataset": "digits", "model": "mlp"})
        for finder, values in accs.items():
            for seed, acc in enumerate(values):
                s.put(trial(finder, 0.5, seed, acc, 5))  # equal convergence epochs: those rows have p = 1
    return float(st.ttest_rel(accs["a"], accs["random"]).pvalue)


def test_family_chooses_the_verdict(tmp_path: Path) -> None:
    p = _three_finders(tmp_path)
    # its own family holds one test: p stays 0.013, "better"; the table holds six: 6p = 0.079, not significant
    assert p < 0.05 < 6 * p
    md = write_report(tmp_path)["md"].read_text()
    assert f"| a | 0.5 | final test acc | +2.50 pp | [+1.26, +3.74] | {p:.3g} | {p:.3g} | {6 * p:.3g} |" in md
    assert "| 3 | 0 | 1 | 100% | better |" in md and "a beat random at node sparsity 0.5" in md
    assert ("Holm p (finder): adjusted within each finder and metric, across its sparsities; 6 families of 1 test each. "
            "Holm p (table): adjusted across every row of the verdict table; one family of 6 tests. "
            "The verdict column follows Holm p (finder) at p < 0.05.") in md
    md = write_report(tmp_path, family="table")["md"].read_text()
    assert "| 3 | 0 | 1 | 100% | no significant difference |" in md
    assert "no finder differed significantly from random" in md and "Holm-adjusted across the verdict table" in md
    assert f"Holm p = {6 * p:.3g}, n = 3 seeds" in md  # the verdict lines quote the p their verdict follows
    table = render_verdict_markdown(tmp_path, family="table")
    assert "| no significant difference |" in table and "| better |" not in table
    assert table.rstrip().endswith("The verdict column follows Holm p (table) at p < 0.05.")
    assert "| better |" in render_verdict_markdown(tmp_path)


def test_unknown_family_is_a_user_error(tmp_path: Path) -> None:
    _three_finders(tmp_path)
    for call in (lambda: write_report(tmp_path, family="all"), lambda: render_verdict_markdown(tmp_path, family="all")):
        with pytest.raises(SparsenasError, match="unknown Holm family 'all'; choose one of: finder, table"):
            call()
    assert not (tmp_path / "report.md").exists()
