"""benchmarks/same_numbers.py: two runs of one spec agree bit for bit; a moved number is named."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

from sparsenas.protocol import run

from helpers import tiny_spec

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "same_numbers.py"


def _load():
    spec = importlib.util.spec_from_file_location("same_numbers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_runs_of_one_spec_agree_and_a_moved_number_is_named(tmp_path):
    same_numbers = _load()
    spec = tiny_spec(seeds=(0,), epochs=2)
    run(spec, tmp_path / "a")
    run(spec, tmp_path / "b")
    n, diff = same_numbers.differences(str(tmp_path / "a"), str(tmp_path / "b"))
    assert n == 5 and diff == []
    with sqlite3.connect(tmp_path / "b" / "sparsenas.db") as db:  # one stored loss moved by a rounding step
        key, epoch, loss = db.execute("select key, epoch, val_loss from curves where epoch = 2 limit 1").fetchone()
        db.execute("update curves set val_loss = ? where key = ? and epoch = ?", (loss * (1 + 2**-23), key, epoch))
    n, diff = same_numbers.differences(str(tmp_path / "a"), str(tmp_path / "b"))
    assert n == 5 and len(diff) == 1 and diff[0].startswith(key) and "curve from epoch 2" in diff[0]
