"""Hardware-aware search (--objectives): the nsga2 finder, its plan, its same-size controls, the report."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import tiny_spec
from sparsenas.cli import main
from sparsenas.errors import SparsenasError
from sparsenas.finders.nsga2 import pick_front
from sparsenas.protocol import RunSpec, make_plan, run
from sparsenas.report import write_report
from sparsenas.report.pareto import hypervolume, seed_hypervolumes
from sparsenas.store import Store

HW = dict(finders=("dense",), objectives=("accuracy", "params"), front_size=3, evo_population=6, generations=2,
          nsga_steps=5, seeds=(0, 1), epochs=2)


def test_objectives_plan_a_front_and_its_same_size_twins():
    spec = tiny_spec(**HW)
    assert spec.finders == ("dense", "nsga2")  # --objectives runs nsga2 without naming it
    plan = make_plan(spec, (32, 16))
    slots = [(t.finder, t.slot, t.seed) for t in plan if t.slot >= 0]
    assert slots == [(f, s, seed) for seed in (0, 1) for s in range(3) for f in ("nsga2", "random")]
    assert len({t.key for t in plan}) == len(plan)
    # the twins' keys depend on the search that sizes them
    other = make_plan(tiny_spec(**{**HW, "nsga_steps": 6}), (32, 16))
    twin = lambda p: {t.key for t in p if t.finder == "random"}  # noqa: E731
    assert twin(plan).isdisjoint(twin(other))


@pytest.mark.parametrize("overrides, message", [
    (dict(objectives=("latency", "accuracy")), "is not accuracy and one cost"),
    (dict(objectives=("accuracy", "energy")), "is not accuracy and one cost"),
    (dict(objectives=("accuracy", "params"), front_size=20), "more than --evo-population"),
    (dict(objectives=("accuracy", "params"), space="weight"), "searches node masks only"),
])
def test_bad_objectives_are_named(overrides, message):
    with pytest.raises(SparsenasError, match=message):
        RunSpec(**overrides).validate()


def test_pick_front_fills_by_rank_then_spreads_along_cost():
    pts = np.array([[0.1, 5.0], [0.2, 4.0], [0.3, 3.0], [0.4, 2.0], [0.5, 1.0], [0.6, 6.0]])
    assert pick_front(pts, 3) == [4, 2, 0]  # one front of five: cheapest, middle, dearest
    assert pick_front(pts, 6) == [4, 3, 2, 1, 0, 5]  # the dominated point comes last


def test_hypervolume_prefers_the_dominating_set():
    assert hypervolume([(0.1, 0.2)]) > hypervolume([(0.2, 0.3)]) > 0
    assert hypervolume([]) == 0.0


def test_hardware_aware_run_end_to_end(tmp_path):
    state = np.random.get_state()[1].copy()
    run(tiny_spec(**HW), tmp_path)
    assert np.array_equal(np.random.get_state()[1], state)  # pymoo's seeding left the caller's NumPy alone
    with Store(tmp_path) as s:
        trials = s.trials()
    front = {(t.seed, t.slot): t for t in trials if t.finder == "nsga2"}
    twins = {(t.seed, t.slot): t for t in trials if t.finder == "random"}
    assert sorted(front) == sorted(twins) == [(seed, s) for seed in (0, 1) for s in range(3)]
    for k, f in front.items():
        r = twins[k]
        assert sum(f.kept_nodes) == sum(r.kept_nodes) and f.sparsity == r.sparsity  # same size
        assert f.latency_ms > 0 and r.latency_ms > 0 and f.search.candidates >= 6
    for seed in (0, 1):  # the front is ordered cheapest first, by the searched objective (params)
        params = [front[(seed, s)].params for s in range(3)]
        assert params == sorted(params)
    hvs = seed_hypervolumes(trials)
    assert [h[0] for h in hvs] == [0, 1] and all(0 < h[1] <= 1 and 0 < h[2] <= 1 for h in hvs)
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Hardware-aware search (nsga2: accuracy vs params)" in md and (tmp_path / "figures" / "pareto.png").is_file()
    # the same command again gives the same front (params: a deterministic objective)
    run(tiny_spec(**HW), tmp_path / "again")
    with Store(tmp_path / "again") as s:
        again = {(t.seed, t.slot): t.kept_nodes for t in s.trials() if t.finder == "nsga2"}
    assert again == {k: f.kept_nodes for k, f in front.items()}


def test_cli_objectives(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--out", str(out), "--limit", "200", "--widths", "16,8", "--finders", "dense", "--objectives", "accuracy,flops",
            "--front-size", "2", "--evo-population", "4", "--generations", "1", "--nsga-steps", "3", "--seeds", "1",
            "--epochs", "1", "--quiet"]
    assert main(args) == 0
    assert "accuracy vs flops" in (out / "report.md").read_text()
    assert main([*args[:-1], "--objectives", "accuracy,energy"]) == 2
    assert "is not accuracy and one cost" in capsys.readouterr().err


def test_a_resumed_latency_run_trains_the_stored_front_and_sizes_twins_from_it(tmp_path):
    import sqlite3

    spec = tiny_spec(**{**HW, "objectives": ("accuracy", "latency"), "seeds": (0,)})
    run(spec, tmp_path)
    with Store(tmp_path) as s:
        before = {(t.finder, t.slot): t.kept_nodes for t in s.trials() if t.slot >= 0}
        gone = [t.key for t in s.trials() if t.slot >= 1]
    db = sqlite3.connect(tmp_path / "sparsenas.db")
    with db:  # as if the run had been killed after slot 0: the rest is trained on resume
        for table in ("curves", "weights", "trials"):
            db.executemany(f"delete from {table} where key = ?", [(k,) for k in gone])
    db.close()
    run(spec, tmp_path)  # a latency search is not repeatable: the stored front must be reused
    with Store(tmp_path) as s:
        after = {(t.finder, t.slot): t.kept_nodes for t in s.trials() if t.slot >= 0}
    assert after == before
    for slot in range(3):
        assert sum(after[("nsga2", slot)]) == sum(after[("random", slot)])


def test_dropout_draws_do_not_depend_on_what_ran_before(tmp_path):
    import torch
    from torch import nn
    from sparsenas.models import MODELS

    @MODELS.register("test-hw-dropout", help="test: an MLP with dropout")
    def _drop(input_shape, num_classes, widths=None):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Dropout(0.5), nn.Linear(24, num_classes))

    spec = tiny_spec(model="test-hw-dropout", widths=None, seeds=(0,), epochs=2)
    torch.manual_seed(1)
    run(spec, tmp_path / "a")
    torch.manual_seed(2)
    run(spec, tmp_path / "b")
    curves = lambda d: {t.key: [e.val_loss for e in t.curve] for t in Store(d).trials()}  # noqa: E731
    assert curves(tmp_path / "a") == curves(tmp_path / "b")
