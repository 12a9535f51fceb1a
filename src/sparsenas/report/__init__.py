"""Report layer: statistics, derived metrics, figures and the markdown/HTML report of a run.

Reads the store only. ``write_report("runs/x")`` writes report.md, report.html, trials.csv and
figures/*.png into the run directory.

`write_report` is imported on first use (PEP 562): the whole report draws figures (matplotlib) and
its spec section reads the registered finders' options (torch), which ``sparsenas report --verdict``
and the statistics need not import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# isort: off
from .verdict import render_verdict_markdown  # first: importing the submodule binds the name `verdict` here...
from .compare import FAMILIES, Comparison, compare_to_random, gap_to_dense
from .derive import Derived, derive, derive_all
from .stats import Paired, Summary, holm, paired, summarize, verdict  # ...which stats' verdict() takes, as it always has
from .tables import Cell, summary_cells
# isort: on

if TYPE_CHECKING:
    from .render import write_report

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


def __getattr__(name: str) -> Any:
    """`write_report`, imported now (with matplotlib and the finders).

    >>> from sparsenas.report import write_report
    >>> write_report.__module__
    'sparsenas.report.render'
    """
    if name == "write_report":
        from .render import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
