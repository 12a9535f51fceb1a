"""The report's "Exported sub-networks" section: what `sparsenas export` wrote, checked and timed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..store.records import TrialRecord
from ..timing import UNSTABLE_CI, steady
from .markup import Block
from .tables import fmt


def _lat(x: dict[str, Any]) -> str:
    return f"{x['median_ms']:.3f} [{x['lo_ms']:.3f}, {x['hi_ms']:.3f}]"


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    """How many times faster `b` ran than `a`, or "unstable" beside a timing too unsteady to divide by
    (the rule `sparsenas export` prints by).

    >>> _ratio({"median_ms": 2.0, "lo_ms": 1.9, "hi_ms": 2.1}, {"median_ms": 1.0, "lo_ms": 0.9, "hi_ms": 1.1})
    '2.00x'
    >>> _ratio({"median_ms": 5.0, "lo_ms": 0.054, "hi_ms": 23.99}, {"median_ms": 1.0, "lo_ms": 0.9, "hi_ms": 1.1})
    'unstable'
    """
    if not all(steady(x["median_ms"], x["lo_ms"], x["hi_ms"]) for x in (a, b)):
        return "unstable"
    return fmt(a["median_ms"] / b["median_ms"], ".2f") + "x"


def blocks(exports: Sequence[dict[str, Any]], trials: Sequence[TrialRecord]) -> list[Block]:
    """One table row per (export, batch size); nothing when the run has no exports.

    >>> blocks([], [])
    []
    """
    by_key = {t.key: t for t in trials}
    rows = []
    for e in exports:
        t = by_key.get(e["key"])
        if t is None or "latency_parent" not in e:
            continue
        for p, c, x in zip(e["latency_parent"], e.get("latency_compact", e["latency_parent"]), e["latency_export"]):
            rows.append(
                [
                    e["key"],
                    t.arm,
                    fmt(t.sparsity, ".2f"),
                    "-".join(map(str, e["kept_nodes"])),
                    f"{e['params_export']:,}",
                    e.get("input", "") or "n/a",
                    fmt(e["max_abs_diff"], ".1e"),
                    str(p["batch"]),
                    _lat(p),
                    _lat(c),
                    _ratio(p, c),
                    _lat(x),
                    _ratio(p, x),
                    f"{e['device']}, {p['threads']} thr",
                ]
            )
    if not rows:
        return []
    return [
        ("h2", "Exported sub-networks"),
        (
            "p",
            "Each trial exported with 'sparsenas export' was compacted, saved with torch.export, loaded back and "
            "checked against the masked parent (the full-size parent holding the trained weights, zeros elsewhere) "
            "on test inputs: 'max diff' is the largest absolute difference of their logits. Latency is milliseconds "
            "per forward pass, median [95% CI of the median, order statistics] over timed repeats after a warm-up, "
            "the three networks timed interleaved in one process; speed-ups are ratios of medians, left out ('unstable') "
            f"where either CI is wider than {UNSTABLE_CI:.0%} of its median (another process was using the CPU). A weight-space "
            "trial exports at full width less the units no weight reads; its other zeros stay in dense tensors. "
            "'input' is what the program takes (any batch size N); the .pt2 file states it too, in its extra "
            "file 'sparsenas.json'.",
        ),
        (
            "table",
            [
                "trial",
                "finder",
                "sparsity",
                "export widths",
                "export params",
                "input",
                "max diff",
                "batch",
                "masked parent ms",
                "compacted module ms",
                "speed-up",
                "exported program ms",
                "speed-up",
                "device",
            ],
            rows,
        ),
    ]
