"""The field's networks end to end: a ResNet-20 with BatchNorm through `run`, the store and `export`.

Tiny widths on a slice of digits (8x8): what is checked is the plumbing a BatchNorm parent needs in
every part of the bench, not accuracy. In the node space the trials train compacted, in populations,
and report their own widths; in the weight space BatchNorm is never masked and never makes a trial
collapsed; export gives a program equal to the trained sub-network.
"""

from __future__ import annotations

import pytest
import torch

from helpers import tiny_spec
from sparsenas.export import export_trial, load_trained
from sparsenas.masks import unpack_weight_mask
from sparsenas.models import build_parent
from sparsenas.protocol import run
from sparsenas.store import Store


@pytest.fixture(scope="module")
def node_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("resnet-node")
    run(tiny_spec(model="resnet20", widths=(4,), finders=("dense", "random", "random-search"), sparsities=(0.5,), seeds=(0,), epochs=2), out)
    return out


@pytest.fixture(scope="module")
def weight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("resnet-weight")
    spec = tiny_spec(
        model="resnet20", widths=(4,), finders=("random", "magnitude", "synflow", "snip"), space="weight", allocation="global",
        sparsities=(0.5, 0.9), seeds=(0,), epochs=1, synflow_iterations=3,
    )  # fmt: skip
    run(spec, out)
    return out


def test_resnet_node_trials_train_compacted_in_populations(node_run):
    trials = Store(node_run).trials()
    assert {t.finder for t in trials} == {"dense", "random", "random-search"}
    assert all(t.status == "done" and not t.collapsed for t in trials)
    sparse = [t for t in trials if t.finder != "dense"]
    # 12 groups (3 streams, 9 block convs) at half their channels; random and random-search share a population
    assert {t.kept_nodes for t in sparse} == {(2,) * 4 + (4,) * 4 + (8,) * 4}
    assert {t.population for t in sparse} == {2}
    dense = next(t for t in trials if t.finder == "dense")
    assert all(t.params < dense.params and t.flops < dense.flops for t in sparse)


def test_resnet_weight_trials_never_collapse_because_of_batchnorm(weight_run):
    parent = build_parent("resnet20", (1, 8, 8), 10, seed=0, widths=(4,))
    assert not any("bn" in n for n in parent.prunable_weights())
    trials = Store(weight_run).trials()
    assert trials and all(t.status == "done" for t in trials)
    at_half = [t for t in trials if t.sparsity == 0.5]
    assert at_half and not any(t.collapsed for t in at_half)  # each of them reaches 80%+ of its layers
    with Store(weight_run) as s:
        for t in at_half:
            mask = unpack_weight_mask(s.weight_mask(t.key), parent)
            assert abs(mask.sparsity() - 0.5) < 1e-3
            assert t.effective_sparsity < 0.9  # BatchNorm passes paths: kept weights stay on them


@pytest.mark.parametrize("which", ["node", "weight"])
def test_a_resnet_sub_network_exports_equal(which, node_run, weight_run, tmp_path):
    run_dir, finder = (node_run, "random") if which == "node" else (weight_run, "magnitude")
    key = next(t.key for t in Store(run_dir).trials() if t.finder == finder and t.sparsity == 0.5)
    r = export_trial(run_dir, key, tmp_path / "sub.pt2", repeats=2)
    assert r.max_abs_diff < 1e-4 and r.argmax_agree == 1.0
    rec, data, masked, small = load_trained(run_dir, key)
    with torch.no_grad():  # the stored sub-network (BatchNorm's running statistics included) reproduces its accuracy
        acc = (small.eval()(data.test.x).argmax(1) == data.test.y).float().mean().item()
    assert acc == pytest.approx(rec.final_test_acc, abs=1e-6)


def test_the_stored_spec_keeps_the_width_option_that_rebuilds_a_resnet(node_run):
    # group sizes (12 of them) are what trial keys hash; the option (4) is what rebuilds the parent
    spec = Store(node_run).spec()
    assert spec["widths"] == [4] * 4 + [8] * 4 + [16] * 4 and spec["parent_widths"] == [4]


def test_a_chain_run_stores_no_parent_widths(tmp_path):
    run(tiny_spec(seeds=(0,), sparsities=(0.5,), finders=("dense",), epochs=1), tmp_path)
    assert "parent_widths" not in Store(tmp_path).spec()


def test_a_resnet_run_stored_before_parent_widths_resumes_and_gains_it(node_run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(node_run, old)
    with Store(old) as s:
        spec = s.spec()
        del spec["parent_widths"]
        s.set_spec(spec)
    before = len(Store(old).trials())
    run(tiny_spec(model="resnet20", widths=(4,), finders=("dense", "random", "random-search"), sparsities=(0.5,), seeds=(0,), epochs=2), old)
    assert len(Store(old).trials()) == before and Store(old).spec()["parent_widths"] == [4]


def test_only_batchnorm_nets_take_the_graph_path_and_their_keys_say_so():
    from sparsenas.protocol import RunSpec, make_plan
    from sparsenas.train.stacked import population_engine

    engines = {m: population_engine(build_parent(m, (1, 28, 28), 10, seed=0, widths=w)) for m, w in
               (("mlp", None), ("lenet5", None), ("resnet20", (4,)), ("vgg11-bn", (8,)))}
    # nets without BatchNorm keep the vmapped populations their stored results were trained with
    assert engines == {"mlp": "own", "lenet5": "vmap", "resnet20": "graph", "vgg11-bn": "graph"}
    spec = RunSpec(seeds=(0,), sparsities=(0.5,))
    plain, graph = make_plan(spec, (8,)), make_plan(spec, (8,), engine="graph")
    assert all("engine" not in t.spec for t in plain) and all(t.spec["engine"] == "stacked-graph" for t in graph)
    assert not {t.key for t in plain} & {t.key for t in graph}
