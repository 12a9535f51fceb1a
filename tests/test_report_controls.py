"""The report's random controls by allocation (uniform, ERK, matched), on hand-built trials whose
differences are worked out by hand: snip beats uniform random by +8.20 pp, ERK random by +2.20 pp
(still significant), its matched control (its shuffle trials) by +0.20 pp (not significant)."""

from __future__ import annotations

import dataclasses

from report_fixtures import trial
from sparsenas.report import compare_to_random, gap_to_dense, write_report
from sparsenas.report.compare import compare_to_controls
from sparsenas.store import Store

ACC = {
    ("dense", 0.0, ""): [0.95, 0.95, 0.96, 0.95, 0.96],
    ("random", 0.9, ""): [0.80, 0.81, 0.82, 0.80, 0.81],
    ("random-erk", 0.9, ""): [0.86, 0.87, 0.86, 0.88, 0.87],
    ("snip", 0.9, ""): [0.88, 0.89, 0.90, 0.885, 0.895],
    ("snip", 0.9, "shuffle"): [0.875, 0.895, 0.89, 0.89, 0.89],
}


def _trials():
    out = []
    for (finder, s, check), accs in ACC.items():
        for seed, acc in enumerate(accs):
            t = trial(finder, s, seed, acc, 3)
            out.append(dataclasses.replace(t, key=f"{t.key}-{check}", check=check))
    return out


def test_each_control_kind_is_compared_and_the_erk_control_is_no_finder():
    trials = _trials()
    by_kind = compare_to_controls(trials)
    assert sorted(by_kind) == ["erk", "matched", "uniform"]
    deltas = {k: [(c.finder, round(c.result.mean_diff * 100, 2), c.verdict) for c in cs] for k, cs in by_kind.items()}
    assert deltas == {
        "uniform": [("snip", 8.2, "better")],
        "erk": [("snip", 2.2, "better")],
        "matched": [("snip", 0.2, "no significant difference")],
    }
    # the verdict table compares finders (and their checks) with uniform random only; random-erk is a
    # control there, and beside dense it is one more arm
    assert {c.finder for c in compare_to_random(trials)} == {"snip", "snip~shuffle"}
    assert {c.finder for c in gap_to_dense(trials)} == {"random", "random-erk", "snip", "snip~shuffle"}


def test_the_report_shows_how_much_of_the_margin_survives(tmp_path):
    with Store(tmp_path) as s:
        s.set_spec({"dataset": "digits", "model": "lenet-300-100", "finders": ["dense", "random", "random-erk", "snip"]})
        for t in _trials():
            s.put(t)
    md = write_report(tmp_path)["md"].read_text()
    section = md[md.index("## Margin over random, by the control's allocation") : md.index("## Sanity checks")]
    assert "| snip | 0.9 | 89.00 ± 0.79 | +8.20\\* | +2.20\\* | +0.20 |" in section
    assert "snip beats uniform random at 1 of 1 sparsities (0.9); of those, it still beats erk random at 1 of 1 (0.9), matched random at 0 of 1" in section
    assert "random-erk: 0.9: 86.80 ± 0.84" in section
    # the answer and the glance say which random their verdicts are against, and random-erk is no finder there
    answer = md[md.index("## Answer") : md.index("## Finders at a glance")]
    assert ("Here random means uniform per-layer counts; against random-erk (ERK densities) and the finders' own per-layer "
            "counts (their shuffle trials), see 'Margin over random, by the control's allocation'.") in answer
    glance = md[md.index("## Finders at a glance") : md.index("## Verdict table")]
    assert "the random control (uniform per-layer counts)" in glance
    assert "| snip | 0.9 |" in glance and "| random-erk |" not in glance


def test_a_run_without_erk_or_matched_controls_has_no_such_section(tmp_path):
    with Store(tmp_path) as s:
        s.set_spec({"dataset": "digits", "model": "lenet-300-100", "finders": ["dense", "random", "snip"]})
        for t in _trials():
            if t.finder != "random-erk" and not t.check:
                s.put(t)
    assert "Margin over random" not in write_report(tmp_path)["md"].read_text()
