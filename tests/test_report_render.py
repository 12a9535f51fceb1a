"""End-to-end report rendering on a hand-built store (no torch, no training)."""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path

import pytest

from sparsenas.errors import SparsenasError
from sparsenas.report import compare_to_random, gap_to_dense, render_verdict_markdown, write_report
from sparsenas.store import Store

from report_fixtures import ACC, CONV, store, trial


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    run = store(tmp_path_factory.mktemp("run"), list(ACC))
    return run, write_report(run)


def test_files_written(full_run: tuple[Path, dict[str, Path]]) -> None:
    run, paths = full_run
    assert paths["md"] == run / "report.md" and paths["html"] == run / "report.html"
    names = ("accuracy_vs_sparsity.png", "val_curves.png", "convergence_vs_sparsity.png", "accuracy_vs_search_cost.png")
    for name in names:
        png = paths[f"figures/{name}"].read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == len(names)  # no checks in this run: no checks figure
    # Self-contained: no scripts, no external resources.
    assert "<script" not in html and 'src="http' not in html and "href=" not in html
    md = paths["md"].read_text()
    assert "![Final test accuracy vs node sparsity" in md and "(figures/accuracy_vs_sparsity.png)" in md
    assert not list(run.glob("**/*.tmp"))


def test_csv_has_one_row_per_trial_with_derived_columns(full_run: tuple[Path, dict[str, Path]]) -> None:
    rows = list(csv.DictReader(io.StringIO(full_run[1]["csv"].read_text())))
    assert len(rows) == 15
    assert {"epochs_to_95", "reached_95", "epochs_to_99", "reached_99", "auc_val_acc_pct", "search_candidates", "kept_nodes"} <= set(rows[0])
    by_key = {r["key"]: r for r in rows}
    # Seed 0 dense final val acc is 0.97: the 99% target 0.9603 is first met at the last epoch (5);
    # random at 0.8 tops out at 0.85 and never gets there.
    assert by_key["dense-0.0-0"]["epochs_to_99"] == "5"
    assert by_key["random-0.8-0"]["epochs_to_99"] == "" and by_key["random-0.8-0"]["reached_99"] == "no"
    assert by_key["dense-0.0-0"]["reached_99"] == "yes"
    # Its 95% target 0.9215: epoch 3 gives 0.97 * (1 - 1/16) = 0.9094, epoch 4 gives 0.97 * (1 - 1/32) = 0.9397.
    assert by_key["dense-0.0-0"]["epochs_to_95"] == "4"
    assert by_key["random-search-0.8-2"]["status"] == "diverged"
    assert by_key["random-search-0.8-2"]["auc_val_acc_pct"] == ""  # no value: an empty cell, not "nan"
    assert by_key["random-search-0.8-2"]["final_test_acc_pct"] == ""


def test_verdict_lines_open_the_report(full_run: tuple[Path, dict[str, Path]]) -> None:
    md = full_run[1]["md"].read_text()
    # Seed-wise differences at 0.5: [0.03, 0.035, 0.03] -> mean +3.17 pp, t = 19 (df 2),
    # p = 1 - 19/sqrt(363) = 0.002758, Holm x2 = 0.005516 -> better.
    better = "- random-search at node sparsity 0.5: better than random (Δ = +3.17 pp, 95% CI ["
    assert better in md
    assert "Holm p = 0.00552, n = 3 seeds)" in md
    # At 0.8 seed 2 diverged: d = [0.005, -0.01] -> -0.25 pp, t = -1/3 (df 1),
    # p = 1 - (2/pi) atan(1/3) = 0.795; Holm keeps the larger one at 0.795.
    line = ("- random-search at node sparsity 0.8: no significant difference from random "
            "(Δ = -0.25 pp, 95% CI [")
    assert line in md and "Holm p = 0.80, n = 2 seeds; 1 excluded: diverged)" in md
    assert "random-search at node sparsity 0.5, convergence epoch:" in md
    assert md.index(better) < md.index("## Verdict table") < md.index("## Gap to dense") < md.index("## Summary")
    assert md.index("## Summary") < md.index("## Figures") < md.index("## Run spec") < md.index("## Methods")
    html = full_run[1]["html"].read_text()
    assert "random-search at node sparsity 0.5: better than random" in html


def test_summary_counts_divergence_and_formats_percentages(full_run: tuple[Path, dict[str, Path]]) -> None:
    md = full_run[1]["md"].read_text()
    # random-search at 0.8: 3 seeds, 1 diverged, mean of (0.855, 0.85) = 85.25%, sd 0.35 pp
    assert "| random-search | 0.8 | 3 | 3 | 1 | 0 | 85.25 ± 0.35 |" in md
    assert "| dense | 0 | 3 | 3 | 0 | 0 | 97.50 ± 0.50 |" in md
    assert '| dataset | "digits" |' in md and "paired t-test" in md and "Holm-Bonferroni" in md


def test_comparison_numbers() -> None:
    trials = [trial(*cell, seed, acc, conv) for cell in ACC for seed, (acc, conv) in enumerate(zip(ACC[cell], CONV[cell]))]
    acc = {(c.sparsity): c for c in compare_to_random(trials) if c.metric == "final_test_acc"}
    assert acc[0.5].result.t == pytest.approx(19.0)
    assert acc[0.5].result.p == pytest.approx(1 - 19 / math.sqrt(363))
    assert acc[0.8].result.p == pytest.approx(1 - 2 / math.pi * math.atan(1 / 3))
    assert acc[0.5].p_holm == pytest.approx(2 * acc[0.5].result.p)
    conv = {c.sparsity: c for c in compare_to_random(trials) if c.metric == "min_val_loss_epoch"}
    # d = [-2, -2, -1]: mean -5/3, sd 1/sqrt(3), t = -5 -> p = 1 - 5/sqrt(27) = 0.0377
    assert conv[0.5].result.p == pytest.approx(1 - 5 / math.sqrt(27))
    gaps = {(g.finder, g.sparsity): g for g in gap_to_dense(trials)}
    # random at 0.5 minus dense: [-0.07, -0.065, -0.06] -> -0.065
    assert gaps[("random", 0.5)].result.mean_diff == pytest.approx(-0.065)
    assert gaps[("random-search", 0.8)].n_excluded == 1


def test_render_verdict_markdown(full_run: tuple[Path, dict[str, Path]]) -> None:
    table = render_verdict_markdown(full_run[0])
    lead, _, table = table.partition("\n\n")
    assert lead == "Finder − the random control with uniform per-layer counts, paired by seed:"  # names its control
    assert table.startswith("| finder | node sparsity | metric | Δ vs random |")
    assert "| random-search | 0.5 | final test acc | +3.17 pp |" in table
    lines = table.splitlines()
    assert len(lines) == 2 + 4 + 2  # header, rule, 2 sparsities x 2 metrics; a blank line and the family note
    assert lines[-1].startswith("Holm p (finder): adjusted within each finder and metric, across its sparsities; "
                                "2 families of 2 tests each. Holm p (table): adjusted across every row of the "
                                "verdict table; one family of 4 tests.")


def test_run_without_random_says_so(tmp_path: Path) -> None:
    run = store(tmp_path / "r", [("dense", 0.0), ("random-search", 0.5), ("random-search", 0.8)])
    md = write_report(run)["md"].read_text()
    assert "This run has no 'random' trials" in md
    assert "## Verdict table" not in md
    assert "no 'random' trials" in render_verdict_markdown(run)
    assert compare_to_random(Store(run, create=False).trials()) == []


def test_dense_only_run_renders(tmp_path: Path) -> None:
    run = store(tmp_path / "d", [("dense", 0.0)])
    paths = write_report(run)
    md = paths["md"].read_text()
    assert "This run has no 'random' trials" in md
    assert "| dense | 0 | 3 | 3 | 0 | 0 | 97.50 ± 0.50 |" in md
    assert "This run has no sparse trials to compare with the dense parent." in md
    assert paths["figures/val_curves.png"].read_bytes()[:4] == b"\x89PNG"


def test_user_errors(tmp_path: Path) -> None:
    with pytest.raises(SparsenasError, match="no sparsenas run"):
        write_report(tmp_path / "missing")
    Store(tmp_path / "empty").close()
    with pytest.raises(SparsenasError, match=r"no trials in .*empty yet; run 'sparsenas run --out"):
        write_report(tmp_path / "empty")


def test_run_without_dense(tmp_path: Path) -> None:
    run = store(tmp_path / "n", [c for c in ACC if c[0] != "dense"])
    paths = write_report(run)
    md = paths["md"].read_text()
    assert "This run has no dense trials" in md
    assert "random-search at node sparsity 0.5: better than random" in md
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    # No dense parent, so no target to reach: the epochs-to columns are empty, not "never".
    assert len(rows) == 12 and {r["epochs_to_99"] for r in rows} == {""}


def test_cells_where_every_trial_diverged(tmp_path: Path) -> None:
    run = tmp_path / "div"
    with Store(run) as s:
        for finder, sparsity in [("dense", 0.0), ("random", 0.5), ("random-search", 0.5)]:
            for seed in range(2):
                s.put(trial(finder, sparsity, seed, math.nan, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's "no artists with labels" on an empty panel
        md = write_report(run)["md"].read_text()
    assert "random-search at node sparsity 0.5: too few seeds to compare with random (Δ = n/a" in md
    assert "n = 0 seeds; 2 excluded: diverged)" in md
    assert "| dense | 0 | 2 | 2 | 2 | 0 | n/a |" in md
    assert "No run spec is stored in this run." in md


def test_mixed_devices_are_flagged(tmp_path: Path) -> None:
    import dataclasses

    with Store(tmp_path) as s:
        for seed, (acc, conv) in enumerate(zip(ACC[("random", 0.5)], CONV[("random", 0.5)])):
            s.put(dataclasses.replace(trial("random", 0.5, seed, acc, conv), device="cpu" if seed else "cuda:0"))
    md = write_report(tmp_path)["md"].read_text()
    assert "trained on different devices (cpu, cuda:0)" in md and "Trained on: cpu, cuda:0." in md


def test_several_controls_per_seed_are_averaged_within_the_seed(tmp_path):
    """3 random controls per seed: the finder is paired with their mean and 'beats' counts them."""
    import dataclasses

    controls = {0: [0.90, 0.92, 0.94], 1: [0.88, 0.90, 0.91], 2: [0.91, 0.93, 0.95]}
    finder = {0: 0.93, 1: 0.90, 2: 0.96}
    trials = []
    for seed in (0, 1, 2):
        for c, acc in enumerate(controls[seed]):
            t = trial("random", 0.5, seed, acc, 5)
            trials.append(dataclasses.replace(t, key=f"{t.key}-{c}", control=c))
        trials.append(trial("random-search", 0.5, seed, finder[seed], 4))
    acc = [c for c in compare_to_random(trials) if c.metric == "final_test_acc"][0]
    diffs = [finder[s] - sum(controls[s]) / 3 for s in (0, 1, 2)]
    assert acc.result.mean_diff == pytest.approx(sum(diffs) / 3)
    assert acc.result.n == 3 and acc.controls == 3
    # seed 0 beats 2 of 3, seed 1 ties one and beats one (1.5 of 3), seed 2 beats all 3
    assert acc.beats == pytest.approx((2 / 3 + 1.5 / 3 + 1) / 3)
    from sparsenas.report.derive import derive_all
    from sparsenas.report.tables import summary_cells

    cell = next(c for c in summary_cells(trials, derive_all(trials)) if c.finder == "random")
    assert (cell.n_trials, cell.n_seeds, cell.final_acc.n) == (9, 3, 3)  # the seed is the unit
    assert cell.final_acc.mean == pytest.approx(sum(sum(v) / 3 for v in controls.values()) / 3)
    with Store(tmp_path) as s:
        for t in trials:
            s.put(t)
    md = write_report(tmp_path)["md"].read_text()
    assert "it does better than 72% of its seed's 3 random controls" in md
