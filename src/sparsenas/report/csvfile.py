"""trials.csv: one row per trial, in the report's units, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from typing import Any

from ..store.records import TrialRecord
from .derive import Derived

# accuracies the report gives in %: the CSV does too, and its column names say so
PERCENT = ("final_test_acc", "best_val_test_acc")
# a spreadsheet runs a cell that starts with one of these as a formula (OWASP's CSV injection list)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
# a plain decimal number, which a spreadsheet reads as a number whatever its sign
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """A CSV cell: nan (no value) as an empty cell, numbers as numbers, and text that a spreadsheet
    would run as a formula behind a leading apostrophe.

    >>> csv_cell(float("nan")), csv_cell(-1.5), csv_cell("-1.5"), csv_cell("=HYPERLINK(1)"), csv_cell("-x")
    ('', -1.5, '-1.5', "'=HYPERLINK(1)", "'-x")
    """
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _row(t: TrialRecord, d: Derived) -> dict[str, Any]:
    known = not math.isnan(d.reference_val_acc)  # the seed has a finished dense trial to set the target

    def epochs(e: int | None) -> int | str:
        return "" if e is None else e  # a number or nothing: a numeric column stays numeric

    def reached(e: int | None) -> str:
        return "" if not known else ("yes" if e is not None else "no")

    row: dict[str, Any] = {}
    for k, v in t.to_row().items():
        if k in PERCENT:
            row[f"{k}_pct"] = v * 100
        elif k == "slot":
            row[k] = "" if v < 0 else v  # -1 marks "not a front slot": no value, not a number
        else:
            row[k] = v
    row.update(
        epochs_to_95=epochs(d.epochs_to_95),
        reached_95=reached(d.epochs_to_95),
        epochs_to_99=epochs(d.epochs_to_99),
        reached_99=reached(d.epochs_to_99),
        auc_val_acc_pct=d.auc_val_acc * 100,  # the mean validation accuracy over epochs, in % like the others
    )
    return {k: csv_cell(v) for k, v in row.items()}


def trials_csv(trials: Sequence[TrialRecord], derived: dict[str, Derived]) -> str:
    """One CSV row per trial: TrialRecord.to_row() plus epochs to 95%/99% of dense and the AUC.

    Accuracies are in % (`final_test_acc_pct`, `best_val_test_acc_pct`, `auc_val_acc_pct`), as in the
    report. A cell without a value (a diverged trial's accuracy, a latency never measured, `slot`
    outside a hardware-aware run) is empty. `epochs_to_95` holds the first epoch at 95% of the seed's
    dense validation accuracy, empty if none; `reached_95` says yes or no, and is empty when the seed
    has no finished dense trial to define the target (likewise for 99%).

    >>> print(trials_csv(trials, derive_all(trials)))  # doctest: +SKIP
    key,finder,sparsity,seed,status,...,final_test_acc_pct,...
    """
    rows = [_row(t, derived[t.key]) for t in trials]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
