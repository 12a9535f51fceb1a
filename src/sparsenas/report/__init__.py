"""Report layer: statistics, derived metrics, figures and the markdown/HTML report of a run.

Reads the store only. ``write_report("runs/x")`` writes report.md, report.html, trials.csv and
figures/*.png into the run directory.
"""

from .compare import FAMILIES, Comparison, compare_to_random, gap_to_dense
from .derive import Derived, derive, derive_all
from .render import write_report
from .stats import Paired, Summary, holm, paired, summarize, verdict
from .tables import Cell, summary_cells
from .verdict import render_verdict_markdown

__all__ = [
    "FAMILIES",
    "Cell",
    "Comparison",
    "Derived",
    "Paired",
    "Summary",
    "compare_to_random",
    "derive",
    "derive_all",
    "gap_to_dense",
    "holm",
    "paired",
    "render_verdict_markdown",
    "summarize",
    "summary_cells",
    "verdict",
    "write_report",
]
