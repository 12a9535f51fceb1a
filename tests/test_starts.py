"""Where a found sub-network starts (--starts scratch-e, scratch-b, finetune; Liu et al. 2019): the
plan and its keys, each start's init and budget, populations that never mix budgets, end-to-end runs
in both spaces, binding and resume, and the report's section."""

from __future__ import annotations

import copy

import pytest
import torch

from helpers import tiny_spec
from sparsenas.data import load_dataset
from sparsenas.errors import SparsenasError
from sparsenas.export import load_trained
from sparsenas.finders import SearchContext, get_finder
from sparsenas.finders.base import Found
from sparsenas.masks import NodeMask, compact, count_flops
from sparsenas.models import build_parent, initialize
from sparsenas.protocol import RunSpec, make_plan, run
from sparsenas.protocol.populations import shape_of
from sparsenas.protocol.starts import scratch_b_epochs, start_from
from sparsenas.report import compare_to_random, write_report
from sparsenas.store import Store
from sparsenas.train import Population, TrainSpec


def test_each_start_is_one_more_arm_of_each_finder_and_the_default_plan_is_unchanged():
    base = RunSpec(seeds=(0,), sparsities=(0.5,), finders=("dense", "random", "snip"))
    plan = make_plan(RunSpec(seeds=(0,), sparsities=(0.5,), finders=("dense", "random", "snip"), starts=("scratch-b", "finetune")), (8, 4))
    assert [(t.finder, t.check) for t in plan] == [("dense", ""), ("random", ""), ("snip", ""), ("snip", "scratch-b"), ("snip", "finetune")]
    assert [t.key for t in plan[:3]] == [t.key for t in make_plan(base, (8, 4))]  # θ0 trials keep their keys
    assert plan[3].spec["start"] == "scratch-b" and plan[3].spec["scratch_b"] == {"flops": "forward-v1", "cap": 2.0}
    assert plan[4].spec["finetune"] == {"epochs": 8, "lr": 0.0005}  # 30 epochs / 4, lr 0.05 / 100
    assert "starts" not in base.identity() and "finetune_epochs" not in base.identity()


def test_bad_starts_are_refused_in_one_line():
    with pytest.raises(SparsenasError, match="unknown start 'scratch'; choose from scratch-e, scratch-b, finetune"):
        RunSpec(starts=("scratch",)).validate()
    with pytest.raises(SparsenasError, match="--finetune-lr must be a positive number"):
        RunSpec(starts=("finetune",), finetune_lr=0.0).validate()
    with pytest.raises(SparsenasError, match="--starts applies to finders that search .* e.g. --finders dense,random,l1-norm"):
        RunSpec(finders=("dense", "random"), starts=("finetune",)).validate()
    with pytest.raises(SparsenasError, match="--finetune-epochs sets the finetune start's budget; add --starts finetune or drop --finetune-epochs"):
        RunSpec(starts=("scratch-e",), finetune_epochs=3).validate()


def test_scratch_b_spends_the_parents_flops_capped_at_twice_the_epochs():
    assert scratch_b_epochs(10, 1000, 1000) == 10
    assert scratch_b_epochs(10, 1000, 667) == 15  # 14.99 rounds half up
    assert scratch_b_epochs(10, 1000, 10) == 20


def _ctx(parent, data, train):
    return SearchContext(parent, data, train, 0.5, 0, torch.Generator(), get_finder("magnitude").Options())


def test_scratch_starts_initialize_the_sub_network_as_itself():
    data = load_dataset("digits", limit=32)
    parent = build_parent("mlp", data.input_shape, 10, 0, (8, 4))
    mask = NodeMask(((0, 2, 4, 6), (1, 3)))
    spec = RunSpec(train=TrainSpec(epochs=4))
    found = start_from("scratch-e", Found(mask), _ctx(parent, data, spec.train), spec, torch.Generator().manual_seed(5))
    small = compact(parent, mask)
    initialize(small, torch.Generator().manual_seed(5))
    started = copy.deepcopy(parent)
    started.load_state_dict(found.init)
    for (n, a), b in zip(compact(started, mask).state_dict().items(), small.state_dict().values()):
        assert torch.equal(a, b), n  # its own fans: kaiming bounds of a 4-unit layer, not an 8-unit one
    assert found.train is None  # scratch-e: the run's epochs
    b = start_from("scratch-b", Found(mask), _ctx(parent, data, spec.train), spec, torch.Generator().manual_seed(5))
    assert b.train.epochs == scratch_b_epochs(4, count_flops(parent, data.input_shape), count_flops(small, data.input_shape))


def test_finetune_starts_from_the_net_the_finder_trained_or_else_the_trained_dense_parent():
    data = load_dataset("digits", limit=64)
    parent = build_parent("mlp", data.input_shape, 10, 0, (8, 4))
    spec = RunSpec(train=TrainSpec(epochs=2, lr=0.1), finetune_epochs=3)
    ctx = _ctx(parent, data, spec.train)
    ticket = get_finder("magnitude").find(ctx)
    ft = start_from("finetune", ticket, ctx, spec, torch.Generator())
    trained, cost = ctx.memo["trained_dense"]
    assert all(torch.equal(ft.init[n], t) for n, t in trained.state_dict().items())
    assert ft.cost == ticket.cost  # magnitude already paid for the training
    assert (ft.train.epochs, ft.train.lr, ft.train.schedule) == (3, 0.001, "constant")
    at_init = Found(ticket.mask)  # a finder that trained nothing (SNIP-like): it pays for the parent now
    assert start_from("finetune", at_init, ctx, spec, torch.Generator()).cost.steps == cost.steps
    # populations: the same widths with another budget never train together
    assert shape_of(ft) != shape_of(ticket) and shape_of(ticket) == ("node", *ticket.mask.kept_counts())


@pytest.mark.parametrize("space", ["node", "weight"])
def test_a_run_with_every_start_trains_each_for_its_budget_and_resumes(tmp_path, space):
    spec = tiny_spec(space=space, finders=("dense", "random", "magnitude"), starts=("scratch-e", "scratch-b", "finetune"),
                     finetune_epochs=2, seeds=(0,), epochs=3)
    summary = run(spec, tmp_path)
    assert summary.ran == summary.planned == 1 + 2 * (1 + 1 + 3)
    with Store(tmp_path) as s:
        trials = {(t.finder, t.check, t.sparsity): t for t in s.trials()}
    for sp in (0.5, 0.8):
        assert len(trials[("magnitude", "", sp)].curve) == 4
        assert len(trials[("magnitude", "scratch-e", sp)].curve) == 4
        assert len(trials[("magnitude", "finetune", sp)].curve) == 3  # epoch 0 and its 2 epochs
        assert 4 < len(trials[("magnitude", "scratch-b", sp)].curve) <= 7  # more epochs, at most 2x
        if space == "node":
            # finetune starts where the trained parent ended: its epoch 0 is the seed's trained dense
            # parent (the dense trial: same θ0, budget and data order) cut to the ticket's channels
            ft = trials[("magnitude", "finetune", sp)]
            _, data, trained_dense, _ = load_trained(tmp_path, trials[("dense", "", 0.0)].key)
            loss, _ = Population([compact(trained_dense, NodeMask(ft.node_mask))], TrainSpec()).evaluate(data.val)
            assert loss[0] == pytest.approx(ft.curve[0].val_loss, rel=1e-5)
        # scratch-e and scratch-b start from one fresh init: the same epoch 0, and another one than θ0's
        e, b = trials[("magnitude", "scratch-e", sp)].curve[0], trials[("magnitude", "scratch-b", sp)].curve[0]
        assert e == b and e != trials[("magnitude", "", sp)].curve[0]
    again = run(spec, tmp_path)
    assert (again.skipped, again.ran) == (again.planned, 0)
    # the verdict table's rows are the finder against random; its starts are compared in their own section
    assert {c.finder for c in compare_to_random(list(trials.values()))} == {"magnitude"}
    md = write_report(tmp_path)["md"].read_text()
    section = md[md.index("## Where the sub-network starts") :]
    assert "| magnitude | 0.5 | finetune |" in section and "Δ finetune − scratch-b" in section


def test_a_run_grows_into_starts_and_an_old_directory_binds(tmp_path):
    small = dict(finders=("dense", "random", "snip"), seeds=(0,), sparsities=(0.5,), epochs=1)
    run(tiny_spec(**small), tmp_path)
    grown = run(tiny_spec(**small, starts=("finetune",)), tmp_path)
    assert (grown.skipped, grown.ran) == (3, 1)
    with Store(tmp_path) as s:
        assert s.spec()["starts"] == ["finetune"] and s.spec()["finetune_epochs"] == 1
    again = run(tiny_spec(**small), tmp_path)  # the directory now holds more; a run asking less resumes
    assert again.ran == 0
    with pytest.raises(SparsenasError, match=r"finetune_epochs \(1 -> 5\)"):
        run(tiny_spec(**small, starts=("finetune",), finetune_epochs=5), tmp_path)


def test_scratch_b_cap_is_an_option_whose_default_keeps_every_key():
    assert scratch_b_epochs(10, 1000, 10, cap=0) == 1000 and scratch_b_epochs(10, 1000, 10, cap=3) == 30
    kw = dict(seeds=(0,), sparsities=(0.5,), finders=("dense", "random", "snip"), starts=("scratch-b",))
    default, explicit, uncapped = (make_plan(RunSpec(**kw, **cap), (8, 4)) for cap in ({}, {"scratch_b_cap": 2.0}, {"scratch_b_cap": 0.0}))
    assert [t.key for t in default] == [t.key for t in explicit]
    assert [a.key == b.key for a, b in zip(default, uncapped)] == [True, True, True, False]  # only scratch-b's key moves
    assert uncapped[-1].spec["scratch_b"] == {"flops": "forward-v1", "cap": 0.0}
    assert "scratch_b_cap" not in RunSpec(**kw).identity() and RunSpec(**kw, scratch_b_cap=0.0).identity()["scratch_b_cap"] == 0.0
    for bad in (0.5, -1.0, float("nan"), float("inf")):
        with pytest.raises(SparsenasError, match="--scratch-b-cap must be 0 .no cap. or a number >= 1"):
            RunSpec(**kw, scratch_b_cap=bad).validate()
    with pytest.raises(SparsenasError, match="--scratch-b-cap sets the scratch-b start's budget; add --starts scratch-b"):
        RunSpec(finders=("dense", "random", "snip"), scratch_b_cap=0.0).validate()


def test_an_uncapped_scratch_b_spends_the_parents_full_flops_and_binds_its_directory(tmp_path):
    small = dict(finders=("dense", "random", "snip"), seeds=(0,), sparsities=(0.8,), epochs=1)
    run(tiny_spec(**small), tmp_path)
    grown = run(tiny_spec(**small, starts=("scratch-b",), scratch_b_cap=0.0), tmp_path)  # the first to train scratch-b sets the cap
    assert grown.ran == 1
    with Store(tmp_path) as s:
        assert s.spec()["scratch_b_cap"] == 0.0
        t = {(t.finder, t.check): t for t in s.trials()}
    dense, sb = t[("dense", "")], t[("snip", "scratch-b")]
    assert len(sb.curve) - 1 == scratch_b_epochs(1, dense.flops, sb.flops, cap=0) > 2  # beyond the default cap of 2x
    assert "scratch-b (a fresh init, the dense parent's training FLOPs)" in write_report(tmp_path)["md"].read_text()
    with pytest.raises(SparsenasError, match=r"scratch_b_cap \(0 -> 2\)"):
        run(tiny_spec(**small, starts=("scratch-b",)), tmp_path)
    assert run(tiny_spec(**small), tmp_path).ran == 0  # a run that asks for no scratch-b resumes


def test_a_directory_that_trained_scratch_b_at_the_default_cap_refuses_another(tmp_path):
    small = dict(finders=("dense", "random", "snip"), seeds=(0,), sparsities=(0.5,), epochs=1, starts=("scratch-b",))
    run(tiny_spec(**small), tmp_path)
    with pytest.raises(SparsenasError, match=r"scratch_b_cap \(2 -> 0\)"):
        run(tiny_spec(**small, scratch_b_cap=0.0), tmp_path)
