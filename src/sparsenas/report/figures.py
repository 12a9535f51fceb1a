"""The report's figures, each returned as PNG bytes.

Figures are built on `matplotlib.figure.Figure` directly and saved through the Agg canvas, never
through pyplot: no global figure registry to leak, no GUI backend picked up from the environment,
and safe to call from worker threads.

Every string a figure draws from a name the user chose (finder, model, dataset) goes through
`literal`: labels are text, never mathtext, so a finder called "$\\frac{a$" is drawn as typed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

from ..store.records import TrialRecord
from .stats import summarize
from .tables import DENSE, Cell, finder_order

DPI = 100


def literal(name: str) -> str:
    r"""A user-chosen name as a figure label that matplotlib draws exactly as written: every "$" is
    escaped (a pair of unescaped ones starts mathtext, and "$\frac{a$" is then a parse error), and a
    leading "_", which would hide the entry from the legend, is kept behind a zero-width space.

    >>> literal(r"$\frac{a$"), literal("_mine")
    ('\\$\\frac{a\\$', '\u200b_mine')
    """
    s = name.replace("$", "\\$")
    return "\u200b" + s if s.startswith("_") else s


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly, whatever the default backend is
    # `literal` escapes for matplotlib's default text parsing; a matplotlibrc with text.usetex, or with
    # text.parse_math off, would read the escaped labels differently: the labels, titles and legend
    # entries drawn so far (tick labels are numbers) keep the default
    for t in fig.findobj(Text):
        t.set_usetex(False)
        t.set_parse_math(True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _colors(finders: Sequence[str]) -> dict[str, str]:
    # One colour per finder, the same in every figure; the dense parent is always black.
    others = [f for f in finder_order(finders) if f != DENSE]
    return {DENSE: "black", **{f: f"C{i}" for i, f in enumerate(others)}}


def _legend(ax: Axes, **kwargs: object) -> None:
    # A panel whose trials all diverged has nothing to label: say so instead of an empty legend.
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)
    else:
        ax.text(0.5, 0.5, "no finished trials", transform=ax.transAxes, ha="center", va="center")


def _finish(fig: Figure, ax: Axes, ylabel: str, title: str, xlabel: str = "node sparsity") -> bytes:
    # the common tail of the per-sparsity figures: labels, grid, legend, PNG bytes
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _png(fig)


def _zero_nan(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def accuracy_vs_sparsity(cells: Sequence[Cell], xlabel: str = "node sparsity") -> bytes:
    """Final test accuracy (%) against node sparsity: a mean line and 95% CI band per finder,
    the dense parent as a horizontal line with its band.

    >>> png = accuracy_vs_sparsity(summary_cells(trials, derive_all(trials)))  # doctest: +SKIP
    >>> png[:4]  # doctest: +SKIP
    b'\\x89PNG'
    """
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    colors = _colors([c.finder for c in cells])
    for finder in finder_order(c.finder for c in cells):
        cs = sorted((c for c in cells if c.finder == finder), key=lambda c: c.sparsity)
        if finder == DENSE:
            s = cs[0].final_acc
            ax.axhline(s.mean * 100, color="black", ls="--", label="dense parent")
            if not math.isnan(s.ci_low):
                ax.axhspan(s.ci_low * 100, s.ci_high * 100, color="black", alpha=0.1, lw=0)
            continue
        x = [c.sparsity for c in cs]
        ax.plot(x, [c.final_acc.mean * 100 for c in cs], marker="o", color=colors[finder], label=literal(finder))
        ax.fill_between(
            x,
            [c.final_acc.ci_low * 100 for c in cs],
            [c.final_acc.ci_high * 100 for c in cs],
            color=colors[finder],
            alpha=0.2,
            lw=0,
        )
    return _finish(fig, ax, "final test accuracy (%)", "Test accuracy vs sparsity (mean, 95% CI across seeds)", xlabel)


def convergence_vs_sparsity(cells: Sequence[Cell], xlabel: str = "node sparsity") -> bytes:
    """Convergence epoch (epoch of minimum validation loss) against node sparsity, mean with 95% CI
    error bars per finder; finders are nudged sideways so the bars do not hide each other.

    >>> png = convergence_vs_sparsity(cells)  # doctest: +SKIP
    """
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    colors = _colors([c.finder for c in cells])
    finders = [f for f in finder_order(c.finder for c in cells) if f != DENSE]
    levels = sorted({c.sparsity for c in cells if c.finder != DENSE})
    gap = min((b - a for a, b in zip(levels, levels[1:])), default=0.1)
    for i, finder in enumerate(finders):
        cs = sorted((c for c in cells if c.finder == finder), key=lambda c: c.sparsity)
        dx = (i - (len(finders) - 1) / 2) * gap * 0.08
        means = [c.conv_epoch.mean for c in cs]
        lo = [_zero_nan(m - c.conv_epoch.ci_low) for m, c in zip(means, cs)]
        hi = [_zero_nan(c.conv_epoch.ci_high - m) for m, c in zip(means, cs)]
        ax.errorbar(
            [c.sparsity + dx for c in cs],
            means,
            yerr=[lo, hi],
            marker="o",
            capsize=3,
            color=colors[finder],
            label=literal(finder),
        )
    for c in cells:
        if c.finder == DENSE:
            ax.axhline(c.conv_epoch.mean, color="black", ls="--", label="dense parent")
            break
    return _finish(fig, ax, "epoch of minimum val loss", "Convergence epoch vs sparsity (mean, 95% CI)", xlabel)


def _mean_curve(trials: Sequence[TrialRecord]) -> tuple[list[int], list[float], list[float], list[float]]:
    # Mean val accuracy (%) per trained epoch (1..E) across seeds, with the 95% t-interval;
    # finished trials only. Epoch 0 (chance level at init) would stretch the axis so far that the
    # differences that matter, tenths of a point, vanish.
    # Several trials of one seed (--controls) are averaged within the seed first: the seed, not the
    # trial, is the independent unit, as in the tables.
    per_seed: dict[int, dict[int, list[float]]] = {}
    for t in trials:
        if t.status == "done":
            for p in t.curve[1:]:
                per_seed.setdefault(p.epoch, {}).setdefault(t.seed, []).append(p.val_acc)
    by_epoch = {e: [sum(v) / len(v) for v in seeds.values()] for e, seeds in per_seed.items()}
    epochs = sorted(by_epoch)
    sums = [summarize(by_epoch[e]) for e in epochs]
    return epochs, [s.mean * 100 for s in sums], [s.ci_low * 100 for s in sums], [s.ci_high * 100 for s in sums]


def val_curves(trials: Sequence[TrialRecord], xlabel: str = "node sparsity") -> bytes:
    """Validation accuracy per trained epoch, one subplot per sparsity: the mean curve of each
    finder across seeds with a light 95% CI band, and the dense parent's curve in every subplot.

    >>> png = val_curves(Store("runs/x", create=False).trials())  # doctest: +SKIP
    """
    colors = _colors([t.finder for t in trials])
    levels: list[float | None] = [*sorted({t.sparsity for t in trials if t.finder != DENSE})] or [None]
    ncols = min(3, len(levels))
    nrows = math.ceil(len(levels) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")  # room for the suptitle
    # each panel zooms on its own range: at low sparsity the curves differ by tenths of a point
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=False)
    dense = _mean_curve([t for t in trials if t.finder == DENSE])
    for k, level in enumerate(levels):
        ax = axes[k // ncols][k % ncols]
        if dense[0]:  # empty when every dense trial diverged
            ax.plot(dense[0], dense[1], color="black", ls="--", label="dense parent")
            ax.fill_between(dense[0], dense[2], dense[3], color="black", alpha=0.08, lw=0)
        for finder in finder_order(t.finder for t in trials):
            group = [t for t in trials if t.finder == finder and t.sparsity == level and finder != DENSE]
            epochs, mean, lo, hi = _mean_curve(group)
            if epochs:
                ax.plot(epochs, mean, color=colors[finder], label=literal(finder))
                ax.fill_between(epochs, lo, hi, color=colors[finder], alpha=0.15, lw=0)
        ax.set_title("dense parent only" if level is None else f"{xlabel} {level:g}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        if k % ncols == 0:
            ax.set_ylabel("val accuracy (%)")
        _legend(ax, fontsize="small")
    for k in range(len(levels), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)  # empty slots of the last row
    fig.suptitle("Validation accuracy over trained epochs (mean across seeds, 95% CI band)")
    return _png(fig)


def _panels(n: int) -> tuple[Figure, list[Axes]]:
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")  # titles clear of the row above
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(n)]


def accuracy_vs_search_cost(cells: Sequence[Cell], xlabel: str = "node sparsity") -> bytes:
    """Final test accuracy against search FLOPs (log scale), one panel per sparsity: a point with its
    95% CI per finder; the random control (no search) and the dense parent as horizontal lines.

    >>> png = accuracy_vs_search_cost(cells)  # doctest: +SKIP
    """
    levels = sorted({c.sparsity for c in cells if c.finder != DENSE})
    fig, axes = _panels(max(1, len(levels)))
    colors = _colors([c.finder for c in cells])
    dense = [c for c in cells if c.finder == DENSE]
    for ax, level in zip(axes, levels):
        for c in (c for c in cells if c.sparsity == level and c.finder != DENSE):
            if math.isnan(c.final_acc.mean):
                continue
            if c.search_flops <= 0:  # no search: a line across the panel
                ax.axhline(c.final_acc.mean * 100, color=colors[c.finder], ls=":", label=f"{literal(c.finder)} (no search)")
                continue
            err = [[_zero_nan(c.final_acc.mean - c.final_acc.ci_low) * 100], [_zero_nan(c.final_acc.ci_high - c.final_acc.mean) * 100]]
            ax.errorbar(
                [c.search_flops], [c.final_acc.mean * 100], yerr=err, marker="o", capsize=3, color=colors[c.finder], label=literal(c.finder)
            )
        if dense and not math.isnan(dense[0].final_acc.mean):
            ax.axhline(dense[0].final_acc.mean * 100, color="black", ls="--", label="dense")
        ax.set_xscale("log")
        ax.set_title(f"{xlabel} {level:g}")
        ax.set_xlabel("search FLOPs (before final training)")
        ax.set_ylabel("final test accuracy (%)")
        ax.grid(alpha=0.3)
        _legend(ax, fontsize="small")
    return _png(fig)


def checks_vs_sparsity(cells: Sequence[Cell], xlabel: str = "node sparsity") -> bytes:
    """One panel per finder that has sanity checks: the finder, each of its checks and the random
    control, final test accuracy against sparsity (mean and 95% CI band).

    >>> png = checks_vs_sparsity(cells)  # doctest: +SKIP
    """
    finders = sorted({c.finder.split("~")[0] for c in cells if "~" in c.finder})
    fig, axes = _panels(max(1, len(finders)))
    for ax, finder in zip(axes, finders):
        arms = [a for a in finder_order(c.finder for c in cells) if a.split("~")[0] == finder or a == "random"]
        for i, arm in enumerate(arms):
            cs = sorted((c for c in cells if c.finder == arm and not math.isnan(c.final_acc.mean)), key=lambda c: c.sparsity)
            if not cs:
                continue
            color = "grey" if arm == "random" else f"C{i}"
            x = [c.sparsity for c in cs]
            ax.plot(
                x, [c.final_acc.mean * 100 for c in cs], marker="o", color=color, label=literal(arm), ls="--" if arm == "random" else "-"
            )
            lo = [(c.final_acc.mean if math.isnan(c.final_acc.ci_low) else c.final_acc.ci_low) * 100 for c in cs]
            hi = [(c.final_acc.mean if math.isnan(c.final_acc.ci_high) else c.final_acc.ci_high) * 100 for c in cs]
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
        ax.set_title(literal(finder))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final test accuracy (%)")
        ax.grid(alpha=0.3)
        _legend(ax, fontsize="small")
    return _png(fig)
