"""The weight space: masks and allocation, masked population training, connectivity and layer
collapse, sanity-check trials in the plan and the runner, and their place in the report."""

from __future__ import annotations

import copy

import pytest
import torch

from helpers import tiny_spec
from sparsenas.cli import main
from sparsenas.errors import SparsenasError
from sparsenas.masks import (
    WeightMask, connected, layer_counts, random_weight_mask, shuffle_weight_mask, weight_mask_from_scores,
)
from sparsenas.models import build_parent
from sparsenas.protocol import make_plan, run
from sparsenas.report import write_report
from sparsenas.store import Store
from sparsenas.train import TrainSpec, train_population


def _prunable(p):
    params = dict(p.named_parameters())
    return {n: params[n] for n in p.prunable_weights()}


def test_per_layer_and_global_allocation():
    scores = {"a": torch.arange(10.0).view(2, 5), "b": torch.arange(10.0, 14.0).view(1, 4)}
    per_layer = weight_mask_from_scores(scores, 0.5)
    assert per_layer.kept_counts() == (5, 2)
    assert per_layer.tensors["a"].flatten().tolist() == [False] * 5 + [True] * 5
    glob = weight_mask_from_scores(scores, 0.5, "global")
    assert glob.kept_counts() == (3, 4)  # the 7 highest of 14: all of b, then 9, 8, 7 of a
    # global allocation can empty a layer; per-layer keeps at least one weight in each
    assert weight_mask_from_scores(scores, 0.8, "global").kept_counts() == (0, 3)
    assert min(weight_mask_from_scores(scores, 0.95).kept_counts()) == 1


def test_random_weight_control_and_shuffle_keep_per_layer_counts():
    p = build_parent("mlp", (1, 8, 8), 10, 0, (16, 8))
    sizes = tuple(t.numel() for t in _prunable(p).values())
    m = random_weight_mask(p, layer_counts(sizes, 0.9), torch.Generator().manual_seed(0))
    m.validate(p)
    assert m.kept_counts() == layer_counts(sizes, 0.9) and abs(m.sparsity() - 0.9) < 0.01
    s = shuffle_weight_mask(m, torch.Generator().manual_seed(1))
    assert s.kept_counts() == m.kept_counts()
    assert any(not torch.equal(s.tensors[n], m.tensors[n]) for n in m.tensors)


def test_connectivity_finds_dead_weights_and_collapse():
    p = build_parent("mlp", (1, 2, 2), 3, 0, (4, 3))
    full = {n: torch.ones_like(t, dtype=torch.bool) for n, t in _prunable(p).items()}
    assert connected(p, WeightMask(full), (1, 2, 2)).kept_counts() == WeightMask(full).kept_counts()
    cut = {n: t.clone() for n, t in full.items()}
    cut["fc2.weight"][:, 0] = False  # hidden unit 0 of fc1 now feeds nothing: its 4 inputs are dead
    assert connected(p, WeightMask(cut), (1, 2, 2)).kept_counts() == (12, 9, 9)
    cut["fc2.weight"][:] = False  # an emptied layer disconnects everything
    assert sum(connected(p, WeightMask(cut), (1, 2, 2)).kept_counts()) == 0
    conv = build_parent("lenet5", (1, 28, 28), 10, 0)
    dense = {n: torch.ones_like(t, dtype=torch.bool) for n, t in _prunable(conv).items()}
    assert sum(connected(conv, WeightMask(dense), (1, 28, 28)).kept_counts()) > 0


def test_masked_members_match_masked_training_alone_and_stay_sparse(digits_small):
    p = build_parent("mlp", digits_small.input_shape, 10, 0, (16, 8))
    sizes = tuple(t.numel() for t in _prunable(p).values())
    masks = [random_weight_mask(p, layer_counts(sizes, 0.7), torch.Generator().manual_seed(i)).float_masks() for i in range(3)]
    spec = TrainSpec(epochs=2, batch_size=32, optimizer="adam", lr=0.01, weight_decay=1e-3)
    nets = [copy.deepcopy(p) for _ in range(3)]
    train_population(nets, digits_small, spec, data_seed=0, masks=masks)
    alone = copy.deepcopy(p)
    train_population([alone], digits_small, spec, data_seed=0, masks=[masks[1]])
    for n, m in masks[1].items():
        w = dict(nets[1].named_parameters())[n].detach()
        assert torch.all(w[m == 0] == 0)  # masked weights never come back
        assert torch.allclose(w, dict(alone.named_parameters())[n].detach(), atol=1e-5)
    # an unmasked tensor (a bias) trains as usual
    assert not torch.equal(nets[1].fc1.bias, p.fc1.bias)


def test_plan_keys_spaces_and_checks():
    node = make_plan(tiny_spec(finders=("dense", "random", "snip")), (32, 16))
    weight = make_plan(tiny_spec(finders=("dense", "random", "snip"), space="weight"), (32, 16))
    keys = lambda plan, f: {t.key for t in plan if t.finder == f}  # noqa: E731
    assert keys(node, "dense") == keys(weight, "dense")  # the dense parent is the same trial in both spaces
    assert keys(node, "random").isdisjoint(keys(weight, "random"))
    checked = make_plan(tiny_spec(finders=("dense", "random", "snip", "random-search"), checks=("shuffle", "invert")), (32, 16))
    arms = sorted({t.arm for t in checked})
    # invert needs scores (random-search has none); dense and random get no checks
    assert arms == ["dense", "random", "random-search", "random-search~shuffle", "snip", "snip~invert", "snip~shuffle"]
    glob = make_plan(tiny_spec(finders=("random", "snip"), allocation="global"), (32, 16))
    assert keys(glob, "random") == keys(node, "random")  # the control does not depend on --allocation
    assert keys(glob, "snip").isdisjoint(keys(node, "snip"))


@pytest.mark.parametrize("values, message", [
    ({"finders": ("dense", "random", "evolution"), "space": "weight"}, "finder 'evolution' searches node masks only"),
    ({"checks": ("shuffle", "flip")}, "unknown check 'flip'"),
    ({"imp_rate": 1.5}, "--imp-rate must be in"),
    ({"halving_eta": 1}, "--halving-eta must be at least 2"),
])
def test_bad_zoo_options_are_named(values, message):
    with pytest.raises(SparsenasError, match=message):
        tiny_spec(**values)


def test_weight_space_run_with_checks_collapse_and_report(tmp_path, monkeypatch):
    import sparsenas.finders.snip as snip

    real = snip.snip_scores

    def starve_classifier(parent, x, y):
        # a global ranking that never keeps a classifier weight: the mask collapses
        s = real(parent, x, y)
        return {n: (torch.full_like(t, -1.0) if n == "out.weight" else t + 1.0) for n, t in s.items()}

    monkeypatch.setattr(snip, "snip_scores", starve_classifier)
    spec = tiny_spec(finders=("dense", "random", "snip", "synflow"), space="weight", allocation="global",
                     checks=("shuffle", "reinit", "invert"), synflow_iterations=5, sparsities=(0.9,), epochs=2)
    summary = run(spec, tmp_path)
    assert summary.ran == 2 * (1 + 1 + 4 + 4)  # per seed: dense, random, two finders with three checks each
    trials = Store(tmp_path).trials()
    by_arm = {(t.arm, t.seed): t for t in trials}
    snip0, syn0 = by_arm[("snip", 0)], by_arm[("synflow", 0)]
    assert snip0.collapsed and snip0.kept_weights[-1] == 0 and snip0.effective_sparsity == 1.0
    assert not syn0.collapsed and syn0.space == "weight" and abs(syn0.weight_sparsity - 0.9) < 1e-3
    # checks keep the finder's per-layer counts; reinit keeps the mask itself
    assert by_arm[("synflow~shuffle", 0)].kept_weights == syn0.kept_weights
    assert by_arm[("synflow~reinit", 0)].kept_nodes == syn0.kept_nodes
    assert by_arm[("synflow~invert", 0)].kept_weights == syn0.kept_weights
    assert syn0.search.flops > 0 and by_arm[("synflow~shuffle", 0)].search == syn0.search
    # the store keeps every weight mask; the reinit check trains its finder's very mask
    from sparsenas.masks import unpack_weight_mask

    parent = build_parent("mlp", (1, 8, 8), 10, 0, (32, 16))
    with Store(tmp_path) as store:
        syn = unpack_weight_mask(store.weight_mask(syn0.key), parent)
        re = unpack_weight_mask(store.weight_mask(by_arm[("synflow~reinit", 0)].key), parent)
        assert syn.kept_counts() == syn0.kept_weights and all(torch.equal(syn.tensors[n], re.tensors[n]) for n in syn.tensors)
        assert store.weight_mask(by_arm[("dense", 0)].key) is None
    # every weight-space trial of the run trains in one population (same full shape), both seeds' 9
    assert {t.population for t in trials if t.finder != "dense"} == {18}
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "weight sparsity" in md and "## Sanity checks (finder − check, paired by seed)" in md
    assert "| synflow | shuffle | 0.9 |" in md
    assert "| finder | weight sparsity | test acc % | Δ vs random | Δ vs shuffle | Δ vs reinit | Δ vs invert | collapsed |" in md
    assert "| snip | 0.9 |" in md and "| 2/2 |" in md  # the glance table marks snip's collapse
    assert "snip at weight sparsity 0.9: 2 of 2 trials collapsed" in md
    assert (tmp_path / "figures" / "accuracy_vs_search_cost.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "checks_vs_sparsity.png").stat().st_size > 1000
    # the run resumes with nothing left to do, and grows by a check
    assert run(spec, tmp_path).ran == 0


def test_list_shows_spaces(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "synflow          node+weight" in out and "evolution        node " in out
