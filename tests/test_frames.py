"""`sparsenas.load_run`: a run's trials and curves as pandas DataFrames, read-only."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from helpers import tiny_spec
from sparsenas import load_run
from sparsenas.errors import SparsenasError
from sparsenas.protocol import run
from sparsenas.report import write_report
from sparsenas.store import Store

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    run(tiny_spec(finders=("dense", "random", "magnitude"), checks=("shuffle",), sparsities=(0.5,), epochs=2), out)
    return out


def test_trials_hold_every_stored_trial_with_the_trials_csv_columns(demo):
    before = (demo / "sparsenas.db").read_bytes()
    r = load_run(demo)
    assert (demo / "sparsenas.db").read_bytes() == before  # read-only
    with Store(demo) as s:
        stored = s.trials()
    assert r.trials["key"].tolist() == [t.key for t in stored]
    assert r.spec["dataset"] == "digits" and r.path == demo
    for col in ("key", "finder", "sparsity", "seed", "status", "control", "check", "slot", "node_sparsity",
                "weight_sparsity", "params", "flops", "final_test_acc", "best_val_test_acc", "min_val_loss_epoch",
                "search_seconds", "search_flops", "epochs_to_95", "epochs_to_99", "auc_val_acc"):
        assert col in r.trials.columns, col
    by_key = r.trials.set_index("key")
    for t in stored:
        row = by_key.loc[t.key]
        assert (row.finder, row.arm, row.sparsity, row.seed, row.params, row.flops) == (
            t.finder, t.arm, t.sparsity, t.seed, t.params, t.flops)
        assert row.final_test_acc == t.final_test_acc and row.search_steps == t.search.steps
        assert row.kept_nodes == t.kept_nodes
    assert set(r.trials["arm"]) == {"dense", "random", "magnitude", "magnitude~shuffle"}
    # the same columns and numbers as the report's trials.csv, whose accuracies may be in % ("_pct")
    csv = pd.read_csv(write_report(demo)["csv"])
    assert {c.removesuffix("_pct") for c in csv.columns} <= set(r.trials.columns)
    for col in ("params", "flops", "seed", "node_sparsity", "auc_val_acc", "search_candidates", "final_test_acc"):
        name, scale = (col, 1) if col in csv.columns else (col + "_pct", 100)
        assert csv[name].tolist() == pytest.approx((scale * r.trials[col]).tolist(), rel=1e-9), col


def test_convergence_columns_are_integers_or_missing(demo):
    t = load_run(demo).trials
    assert str(t["epochs_to_95"].dtype) == "Int64"
    dense = t[t.finder == "dense"]  # a dense trial reaches 95% of its own final accuracy by its last epoch
    assert dense["epochs_to_95"].notna().all() and (dense["reference_val_acc"] > 0).all()
    assert ((t["min_val_loss_epoch"] >= 0) & (t["min_val_loss_epoch"] <= 2)).all()


def test_curves_one_row_per_trial_and_epoch(demo):
    r = load_run(demo)
    with Store(demo) as s:
        stored = {t.key: t for t in s.trials()}
    assert len(r.curves) == sum(len(t.curve) for t in stored.values()) == 3 * len(stored)  # epochs 0, 1, 2
    assert not r.curves.duplicated(["key", "epoch"]).any()
    for row in r.curves.itertuples():
        e = stored[row.key].curve[row.epoch]
        assert (row.train_loss, row.val_loss, row.val_acc, row.test_acc) == (e.train_loss, e.val_loss, e.val_acc, e.test_acc)
        assert (row.arm, row.sparsity, row.seed) == (stored[row.key].arm, stored[row.key].sparsity, stored[row.key].seed)
    # what a notebook does with it: mean validation accuracy per arm and epoch
    mean = r.curves.groupby(["arm", "epoch"])["val_acc"].mean()
    assert mean.index.get_level_values("epoch").max() == 2 and set(mean.index.get_level_values("arm")) == set(r.trials.arm)


def test_a_diverged_trial_has_nan_accuracies(tmp_path):
    run(tiny_spec(finders=("dense",), seeds=(0,), sparsities=(0.5,), epochs=2, lr=1e5), tmp_path)
    t = load_run(tmp_path).trials.iloc[0]
    assert t.status == "diverged" and math.isnan(t.final_test_acc) and math.isnan(t.auc_val_acc)


def test_a_missing_run_is_one_line_and_creates_nothing(tmp_path):
    with pytest.raises(SparsenasError, match="no sparsenas run in '.*nope'"):
        load_run(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    with pytest.raises(SparsenasError, match="no sparsenas run"):
        load_run(tmp_path)  # an existing folder without a store
    assert list(tmp_path.iterdir()) == []


def test_without_pandas_the_error_says_what_to_install(demo, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(SparsenasError, match=r"pip install 'sparsenas\[pandas\]'"):
        load_run(demo)


def test_importing_sparsenas_stays_light():
    # load_run is offered lazily: `import sparsenas` (every submodule import, the CLI) pulls in no torch
    code = "import sys, sparsenas; assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
