"""Write a run's report: report.md, report.html (self-contained), trials.csv and figures/*.png.

The report is built once as a list of blocks (heading, paragraph, list, table, figure) and
rendered twice, to markdown and to HTML, so the two can never disagree. It reads the store only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..store.records import TrialRecord
from ..store.sqlite import Store
from . import calibration, checks, controls, figures, pareto, starts
from . import exports as export_section
from .compare import Comparison, check_family, compare_to_random, gap_to_dense
from .csvfile import trials_csv
from .derive import Derived, derive_all
from .markup import Block, to_html, to_markdown
from .methods import METHODS
from .runspec import spec_blocks
from .source import load_trials, sparsity_label
from .tables import DENSE, UNIFORM, Cell, fmt, fmt_ci, fmt_mean_sd, fmt_p, fmt_si, summary_cells
from .verdict import answer, family_note, fmt_delta, verdict_rows


def _gap_rows(gaps: Sequence[Comparison], label: str) -> tuple[list[str], list[list[str]]]:
    headers = ["finder", label, "Δ test acc vs dense", "95% CI", "Holm p", "n", "excluded"]
    return headers, [[g.finder, f"{g.sparsity:g}", *fmt_delta(g), fmt_p(g.p_holm), str(g.result.n), str(g.n_excluded)] for g in gaps]


def _summary_rows(cells: Sequence[Cell], label: str) -> tuple[Block, Block]:
    acc = [
        "finder",
        label,
        "seeds",
        "trials",
        "diverged",
        "collapsed",
        "final test acc %",
        "95% CI",
        "best-val test acc %",
        "95% CI",
        "convergence epoch",
        "epochs to 99% dense (reached)",
        "AUC val acc",
    ]
    cost = [
        "finder",
        label,
        "achieved node sparsity",
        "weight sparsity",
        "effective weight sparsity",
        "params",
        "FLOPs/sample",
        "search candidates",
        "search steps",
        "search FLOPs",
        "search s",
        "train s",
    ]
    acc_rows, cost_rows = [], []
    for c in cells:
        done = c.n_trials - c.n_diverged
        acc_rows.append(
            [
                c.finder,
                f"{c.sparsity:g}",
                str(c.n_seeds),
                str(c.n_trials),
                str(c.n_diverged),
                str(c.n_collapsed),
                fmt_mean_sd(c.final_acc, ".2f", 100),
                fmt_ci(c.final_acc, ".2f", 100, within=(0.0, 1.0)),
                fmt_mean_sd(c.best_val_acc, ".2f", 100),
                fmt_ci(c.best_val_acc, ".2f", 100, within=(0.0, 1.0)),
                fmt_mean_sd(c.conv_epoch, ".1f"),
                f"{fmt(c.epochs_to_99.mean, '.1f')} ({c.reached_99}/{done})",
                fmt(c.auc.mean, ".4f"),
            ]
        )
        cost_rows.append(
            [
                c.finder,
                f"{c.sparsity:g}",
                fmt(c.node_sparsity, ".3f"),
                fmt(c.weight_sparsity, ".3f"),
                fmt(c.effective_sparsity, ".3f"),
                fmt_si(c.params),
                fmt_si(c.flops),
                fmt_si(c.search_candidates),
                fmt_si(c.search_steps),
                fmt_si(c.search_flops),
                fmt(c.search_seconds, ".1f"),
                fmt(c.wall_seconds, ".1f"),
            ]
        )
    return ("table", acc, acc_rows), ("table", cost, cost_rows)


def _device_warning(trials: Sequence[TrialRecord]) -> list[Block]:
    devices = sorted({t.device for t in trials if t.device})
    if len(devices) < 2:
        return []
    # float differences compound over training: CPU and GPU twins end tenths of a point apart
    return [
        (
            "p",
            f"Warning: this run's trials were trained on different devices ({', '.join(devices)}); "
            "paired differences then include device noise. Re-run on one device for a clean comparison.",
        )
    ]


def _blocks(
    run_dir: Path,
    spec: dict[str, Any] | None,
    trials: list[TrialRecord],
    derived: dict[str, Derived],
    sessions: Sequence[dict[str, Any]] = (),
    exports: Sequence[dict[str, Any]] = (),
    family: str = "finder",
) -> list[Block]:
    everything = trials
    # front slots (nsga2 and their same-size random twins) have no target sparsity: their own section
    trials = [t for t in trials if t.slot < 0]
    cells = summary_cells(trials, derived)
    comps = compare_to_random(trials, family=family)
    gaps = gap_to_dense(trials)
    label = sparsity_label(trials)
    title = " / ".join(str(spec[k]) for k in ("dataset", "model") if spec and k in spec) or run_dir.name
    context = f"On {spec['dataset']} with the {spec['model']} parent" if spec and {"dataset", "model"} <= set(spec) else "In this run"
    acc_table, cost_table = _summary_rows(cells, label)
    # the figures show the finders; their sanity checks get a figure of their own
    finder_cells = [c for c in cells if "~" not in c.finder]
    finder_trials = [t for t in trials if not t.check]
    # the headline sentence first, then the warning that qualifies it, then the details
    said = answer(trials, comps, label, context)
    blocks: list[Block] = [
        ("h1", f"sparsenas report: {title}"),
        ("h2", "Answer"),
        said[0],
        *_device_warning(trials),
        *said[1:],
        *checks.glance(trials, cells, label, family),
    ]
    if comps:
        blocks += [
            ("h2", f"Verdict table (finder − random control with {UNIFORM}, paired by seed)"),
            ("table", *verdict_rows(comps, label)),
            ("p", family_note(comps)),
        ]
    blocks += controls.blocks(trials, cells, label)
    blocks += starts.blocks(trials, cells, label)
    blocks += checks.blocks(trials, cells, label)
    blocks.append(("h2", "Gap to dense (finder − dense parent, paired by seed)"))
    if gaps:
        blocks.append(("table", *_gap_rows(gaps, label)))
        blocks.append(
            ("p", "Holm p here: adjusted within each finder across its sparsities (the finder family), against the dense parent.")
        )
    elif any(t.finder == DENSE for t in trials):
        blocks.append(("p", "This run has no sparse trials to compare with the dense parent."))
    else:
        blocks.append(("p", "This run has no dense trials; add 'dense' to the run's finders to see the gap."))
    blocks += [
        ("h2", "Summary per finder and sparsity"),
        ("p", "Accuracy and convergence (finished trials):"),
        acc_table,
        ("p", "Size and search cost (all trials):"),
        cost_table,
        ("h2", "Figures"),
        (
            "fig",
            "accuracy_vs_sparsity.png",
            figures.accuracy_vs_sparsity(finder_cells, label),
            f"Final test accuracy vs {label} (mean and 95% CI; dashed: dense parent).",
        ),
        (
            "fig",
            "val_curves.png",
            figures.val_curves(finder_trials, label),
            "Validation accuracy per trained epoch (1..E), one panel per sparsity, each on its own scale (mean across seeds, 95% CI band).",
        ),
        (
            "fig",
            "convergence_vs_sparsity.png",
            figures.convergence_vs_sparsity(finder_cells, label),
            f"Epoch of minimum validation loss vs {label} (mean and 95% CI).",
        ),
        (
            "fig",
            "accuracy_vs_search_cost.png",
            figures.accuracy_vs_search_cost(finder_cells, label),
            "Final test accuracy vs search cost (FLOPs spent before the final training; log scale), one panel per sparsity "
            "(mean and 95% CI; dotted: finders that do not search, dashed: dense parent).",
        ),
        *checks.figure(cells, label),
        *calibration.blocks(everything, spec),
        *pareto.blocks(everything),
        *export_section.blocks(exports, everything),
        ("h2", "Run spec"),
    ]
    if spec is None:
        blocks.append(("p", "No run spec is stored in this run."))
    else:
        blocks += spec_blocks(spec)
    devices = sorted({t.device for t in trials if t.device})
    if devices:
        blocks.append(("p", f"Trained on: {', '.join(devices)}."))
    if sessions:
        blocks.append(
            (
                "p",
                "Sessions that trained into this directory (peak memory: process peak resident memory "
                "on the CPU, peak allocated memory on a GPU):",
            )
        )
        blocks.append(
            (
                "table",
                ["started (UTC)", "device", "trials", "populations", "population cap", "seconds", "peak memory"],
                [
                    [
                        str(x.get("started", "")),
                        str(x.get("device", "")),
                        str(x.get("trials", "")),
                        str(x.get("populations", "")),
                        str(x.get("population_cap", "")),
                        fmt(x.get("seconds"), ".1f"),
                        fmt_bytes(x.get("peak_memory_bytes")),
                    ]
                    for x in sessions
                ],
            )
        )
    return blocks + [("h2", "Methods"), ("p", METHODS)]


def fmt_bytes(n: Any) -> str:
    """Bytes in binary units, or n/a.

    >>> fmt_bytes(3 * 2**30), fmt_bytes(None)
    ('3.0 GiB', 'n/a')
    """
    if not isinstance(n, (int, float)) or isinstance(n, bool) or n < 0:
        return "n/a"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _write(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so a reader never sees half a report.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(run_dir: str | Path, family: str = "finder") -> dict[str, Path]:
    """Write report.md, report.html, trials.csv and figures/*.png into the run directory.

    `family` names the Holm family the verdicts follow: "finder" (each finder and metric across its
    sparsities) or "table" (every row of the verdict table); the table shows both adjusted p's.
    Returns the written paths under the keys "md", "html", "csv" and "figures/<name>".

    >>> paths = write_report("runs/x", family="table")  # doctest: +SKIP
    >>> paths["html"]  # doctest: +SKIP
    PosixPath('runs/x/report.html')
    """
    run_dir = Path(run_dir)
    check_family(family)  # before any work: a misspelt family is the caller's error
    spec, trials = load_trials(run_dir)
    derived = derive_all(trials)
    with Store(run_dir, create=False) as store:
        sessions, exports = store.sessions(), store.exports()
    blocks = _blocks(run_dir, spec, trials, derived, sessions, exports, family)
    (run_dir / "figures").mkdir(exist_ok=True)
    paths: dict[str, Path] = {}
    for b in blocks:
        if b[0] == "fig":
            paths[f"figures/{b[1]}"] = run_dir / "figures" / b[1]
            _write(paths[f"figures/{b[1]}"], b[2])
    for key, name, text in (
        ("md", "report.md", to_markdown(blocks)),
        ("html", "report.html", to_html(blocks)),
        ("csv", "trials.csv", trials_csv(trials, derived)),
    ):
        paths[key] = run_dir / name
        _write(paths[key], text.encode("utf-8"))
    return paths
