"""nsga2 --predictor (finders/surrogate.py): plain NSGA-II unchanged without it; with ridge or gbm the
search is repeatable, trains each width vector once, charges only what it trained, and picks its front
from those; the hypervolume and the exact cost model against hand values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import tiny_spec
from sparsenas.cli import main
from sparsenas.data import load_dataset
from sparsenas.errors import SparsenasError
from sparsenas.finders import SearchContext, nsga2
from sparsenas.finders.nsga2 import EVALUATED, NSGA2Options, mask_of, search_front
from sparsenas.finders.surrogate import exact_cost_model, hypervolume
from sparsenas.masks import compact, count_flops, count_params
from sparsenas.models import build_parent
from sparsenas.protocol import RunSpec, make_plan
from sparsenas.train import TrainSpec

SMALL = dict(evo_population=4, generations=3, nsga_steps=3, front_size=3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=200)


def _search(data, widths=(12, 6), seed=7, **options):
    parent = build_parent("mlp", data.input_shape, 10, 0, widths)
    o = NSGA2Options(**{"objectives": ("accuracy", "params"), **SMALL, **options})
    ctx = SearchContext(parent, data, TrainSpec(epochs=1, batch_size=16), 0.5, 0, torch.Generator().manual_seed(seed), o)
    front, cost = search_front(ctx)
    return front, cost, ctx.memo[EVALUATED]


def test_without_a_predictor_the_search_is_the_one_before_it_existed(digits):
    # computed by the code before --predictor existed (this machine, torch 2.13 CPU, pymoo 0.6.2)
    before = [((1, 6), 19 / 180, 147.0), ((6, 6), 25 / 180, 502.0), ((7, 6), 28 / 180, 573.0)]
    for options in ({}, {"predictor": "none"}):
        front, cost, _ = _search(digits, **options)
        assert [(f.widths, f.cost) for f in front] == [(w, c) for w, _, c in before]
        assert [f.proxy_acc for f in front] == pytest.approx([a for _, a, _ in before], abs=1e-9)
        assert (cost.candidates, cost.steps) == (10, 30)


def test_the_predictor_enters_the_keys_only_when_set():
    hw = dict(finders=("dense",), objectives=("accuracy", "params"), front_size=2, evo_population=4, seeds=(0,))
    keys = lambda **o: {(t.finder, t.slot): t.key for t in make_plan(RunSpec(**hw, **o).validate(), (32, 16))}  # noqa: E731
    base, ridge, gbm = keys(), keys(predictor="ridge"), keys(predictor="gbm")
    assert base == keys(predictor="none")
    for k in base:  # the front and its same-size twins depend on the search; dense does not
        assert len({base[k], ridge[k], gbm[k]}) == (1 if k[0] == "dense" else 3)
    assert keys(predictor="ridge", predictor_pool=7) != ridge


@pytest.mark.parametrize("predictor, cost", [("ridge", "params"), ("gbm", "params"), ("ridge", "flops"), ("gbm", "latency")])
def test_a_surrogate_search_trains_each_candidate_once_and_charges_only_those(digits, monkeypatch, predictor, cost):
    calls: list[list[tuple[int, ...]]] = []  # the width vectors trained, one list per generation
    real = nsga2.proxy_scores

    def counted(ctx, masks, steps):
        calls.append([m.kept_counts() for m in masks])
        return real(ctx, masks, steps)

    monkeypatch.setattr(nsga2, "proxy_scores", counted)
    state = np.random.get_state()[1].copy()
    front, spent, evaluated = _search(digits, predictor=predictor, objectives=("accuracy", cost))
    assert np.array_equal(np.random.get_state()[1], state)  # NumPy's global generator is the caller's
    trained = [w for c in calls for w in c]
    assert len(set(trained)) == len(trained) == len(evaluated) == spent.candidates  # each width vector trained once
    assert spent.steps == 3 * spent.candidates and spent.seconds > 0
    # every later generation trains a full population of new candidates
    assert [len(c) for c in calls[1:]] == [SMALL["evo_population"]] * (SMALL["generations"] - 1)
    assert all(f in evaluated for f in front)  # the front is measured candidates, not predictions
    plain = _search(digits, objectives=("accuracy", cost))[2]
    assert [c.widths for c in evaluated[:3]] == [c.widths for c in plain[:3]]  # plain NSGA-II's first generation
    if cost != "latency":  # a deterministic cost: the same seed gives the same search
        again = _search(digits, predictor=predictor, objectives=("accuracy", cost))
        assert again[0] == front and again[2] == evaluated and again[1].steps == spent.steps
        assert [c.widths for c in _search(digits, seed=8, predictor=predictor, objectives=("accuracy", cost))[2]] != [
            c.widths for c in evaluated
        ]


def test_a_space_smaller_than_the_budget_is_trained_once_through(digits):
    front, cost, evaluated = _search(digits, widths=(2, 2), predictor="ridge", evo_population=3, generations=5, front_size=2)
    assert sorted(c.widths for c in evaluated) == [(1, 1), (1, 2), (2, 1), (2, 2)] and cost.candidates == 4


def test_hypervolume_against_hand_values():
    # costs relative to the parent's 100: (0.5, 0.5) alone dominates 0.5 x 0.5 of the unit square
    assert hypervolume([(0.5, 50.0)], 100.0) == pytest.approx(0.25)
    # (0.25, 0.75) adds 0.25 x 0.25 beside it; (0.1, 0.9) adds 0.15 x 0.1 more
    assert hypervolume([(0.5, 50.0), (0.25, 75.0)], 100.0) == pytest.approx(0.3125)
    assert hypervolume([(0.5, 50.0), (0.25, 75.0), (0.1, 90.0)], 100.0) == pytest.approx(0.3275)
    # a dominated point, one costlier than the parent and one beyond the reference add nothing
    assert hypervolume([(0.5, 50.0), (0.6, 60.0), (0.05, 120.0), (1.2, 10.0)], 100.0) == pytest.approx(0.25)
    assert hypervolume([], 100.0) == 0.0


@pytest.mark.parametrize("count", ["params", "flops"])
def test_the_inner_search_costs_are_the_compacted_counts(count):
    parent = build_parent("lenet5", (1, 28, 28), 10, 0)
    sizes = tuple(g.size for g in parent.node_groups())
    orders = [torch.randperm(n, generator=torch.Generator().manual_seed(0)) for n in sizes]

    def exact(w):
        net = compact(parent, mask_of(orders, w))
        return float(count_params(net) if count == "params" else count_flops(net, (1, 28, 28)))

    model = exact_cost_model(exact, sizes, np.random.default_rng(1))
    rows = np.random.default_rng(2).integers(1, np.array(sizes) + 1, size=(5, len(sizes)))
    assert model(rows) == pytest.approx([exact(tuple(int(v) for v in r)) for r in rows], rel=1e-9)


def test_a_bad_predictor_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SparsenasError, match="--predictor must be one of none, ridge, gbm, got 'xgb'"):
        RunSpec(predictor="xgb").validate()
    with pytest.raises(SparsenasError, match="--predictor-pool 50 sizes the surrogate's search; add --predictor"):
        RunSpec(predictor_pool=50).validate()
    args = ["run", "--out", str(tmp_path / "r"), "--objectives", "accuracy,flops", "--quiet", "--predictor", "xgb"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--predictor must be one of none, ridge, gbm" in err
    assert not (tmp_path / "r").exists()


def test_a_run_with_a_surrogate_trains_its_front(tmp_path):
    from sparsenas.protocol import run
    from sparsenas.store import Store

    spec = tiny_spec(finders=("dense",), objectives=("accuracy", "flops"), predictor="gbm", front_size=2, evo_population=4,
                     generations=2, nsga_steps=3, seeds=(0,), epochs=1)
    run(spec, tmp_path)
    with Store(tmp_path) as s:
        trials = s.trials()
    front = [t for t in trials if t.finder == "nsga2"]
    assert len(front) == 2 and all(t.spec["options"]["predictor"] == "gbm" and 4 < t.search.candidates <= 8 for t in front)
