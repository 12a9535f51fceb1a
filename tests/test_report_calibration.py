"""The report's "How well the learning curves extrapolate" section, on hand-built trials whose curves
are v(e) = final - 0.1 / e: the last value seen after 2 of 10 epochs misses the end by 0.1/2 - 0.1/10
= 4.00 pp, after 3 of 10 by 0.1/3 - 0.1/10 = 2.33 pp."""

from __future__ import annotations

import dataclasses
import math

import pytest

from report_fixtures import trial
from sparsenas.report import calibration, write_report
from sparsenas.store import EpochRecord, Store

FINALS = [0.90, 0.88, 0.86, 0.92]


def _curve(final: float, epochs: int) -> tuple[EpochRecord, ...]:
    vals = [0.1] + [final - 0.1 / e for e in range(1, epochs + 1)]
    return tuple(EpochRecord(e, 1 - v, 1 - v, v, v) for e, v in enumerate(vals))


def _trials(epochs: int = 10) -> list:
    out = [dataclasses.replace(trial("random", 0.5, seed, f, 5), curve=_curve(f, epochs)) for seed, f in enumerate(FINALS)]
    # a diverged trial's curve stops early and is no evidence of how curves end: left out
    bad = trial("random-search", 0.5, 0, math.nan, 5)
    return out + [dataclasses.replace(bad, curve=_curve(0.5, epochs)[:4])]


def _table(blocks):
    (table,) = [b for b in blocks if b[0] == "table"]
    return {row[0]: dict(zip(table[1], row)) for row in table[2]}


def test_the_table_counts_the_finished_curves_and_the_last_value_error_by_hand():
    blocks = calibration.blocks(_trials(), {"dataset": "digits", "model": "lenet-300-100"})
    assert blocks[0] == ("h2", "How well the learning curves extrapolate")
    rows = _table(blocks)
    assert list(rows) == ["10%", "20%", "30%"]
    assert [(r["curves"], r["epochs seen"]) for r in rows.values()] == [("4", "2"), ("4", "2"), ("4", "3")]
    assert rows["10%"]["last-value MAE pp"] == "4.00" and rows["30%"]["last-value MAE pp"] == "2.33"
    for r in rows.values():
        assert 0 <= float(r["MAE pp"]) < 4.0  # the forecast beats the last value on curves of its own kind
        assert 0 <= float(r["50% coverage"]) <= float(r["90% coverage"]) <= 1 and float(r["90% width pp"]) > 0
    text = blocks[1][1]
    assert "all 4" in text and "a held-out test of them" in text and "Fashion-MNIST LeNet-300-100" in text
    assert blocks[-1][0] == "fig" and blocks[-1][1] == "extrapolation.png" and blocks[-1][2][:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "spec, says",
    [
        ({"dataset": "fashion-mnist", "model": "lenet-300-100"}, "are not a held-out test"),
        ({"dataset": "fashion-mnist", "model": "resnet20"}, "a held-out test of them"),
        (None, "whether it is a held-out test is unknown"),
    ],
)
def test_the_section_says_whether_the_run_is_held_out(spec, says):
    assert says in calibration.blocks(_trials(), spec)[1][1]


def test_short_curves_get_no_section():
    assert calibration.blocks(_trials(epochs=calibration.MIN_EPOCHS - 1), None) == []


def test_a_large_run_is_sampled_by_trial_key(monkeypatch):
    monkeypatch.setattr(calibration, "MAX_CURVES", 3)
    blocks = calibration.blocks(_trials(), None)
    assert "3 of the 4 finished curves, chosen by trial key" in blocks[1][1]
    assert {r["curves"] for r in _table(blocks).values()} == {"3"}
    curves, qualified = calibration.curves_of(_trials())
    assert qualified == 4 and len(curves) == 3  # the monkeypatched cap holds here too


def test_the_report_shows_the_section_and_writes_its_figure(tmp_path):
    with Store(tmp_path) as s:
        s.set_spec({"dataset": "digits", "model": "lenet-300-100", "finders": ["random", "random-search"]})
        for t in _trials():
            s.put(t)
    paths = write_report(tmp_path)
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert "## How well the learning curves extrapolate" in md and "How well the learning curves extrapolate</h2>" in html
    assert "| 10% | 4 | 2 |" in md
    assert paths["figures/extrapolation.png"].read_bytes()[:4] == b"\x89PNG"
