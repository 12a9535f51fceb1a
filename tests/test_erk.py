"""The ERK random control: Erdos-Renyi-Kernel per-layer counts (Evci et al. 2020) against hand values,
RigL's dense-layer loop, and the `random-erk` finder's masks on real parents and in a run."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import tiny_spec
from sparsenas.errors import SparsenasError
from sparsenas.finders import SearchContext, get_finder
from sparsenas.finders.scoring import prunable_params
from sparsenas.masks import erk_counts, global_count, layer_counts, unpack_weight_mask
from sparsenas.models import build_parent
from sparsenas.protocol import run
from sparsenas.store import Store


def test_erk_counts_match_densities_computed_by_hand():
    # linear (8, 16), linear (4, 8), conv (4, 2, 3, 3): 128 + 32 + 72 = 232 weights, 58 kept at s = 0.75.
    # ERK densities eps * sum/prod: eps * 24/128, eps * 12/32, eps * 12/72 (kernel dims counted);
    # times the sizes the counts are eps * 24, eps * 12, eps * 12, so eps = 58 / 48 and the real
    # counts are 29, 14.5, 14.5 (densities 0.2265625, 0.453125, 0.2013...), all below 1
    shapes = [(8, 16), (4, 8), (4, 2, 3, 3)]
    eps = 58 / 48
    densities = [eps * sum(s) / math.prod(s) for s in shapes]
    assert densities == pytest.approx([0.2265625, 0.453125, 29 / 144])
    assert [d * math.prod(s) for d, s in zip(densities, shapes)] == pytest.approx([29.0, 14.5, 14.5])
    # the two halves tie: largest remainder gives the one spare weight to the earlier layer
    assert erk_counts(shapes, 0.75) == (29, 15, 14)
    assert global_count(tuple(math.prod(s) for s in shapes), 0.75) == 58


def test_erk_linear_is_erdos_renyi_and_a_conv_counts_its_kernel():
    # two linears of one size split evenly; a conv of the same (out, in) has kh * kw times the weights
    # but only kh + kw more in its dim sum, so its density is far lower than the linear's
    assert erk_counts([(10, 20), (10, 20)], 0.8) == (40, 40)
    lin, conv = erk_counts([(10, 20), (10, 20, 3, 3)], 0.8)
    assert lin + conv == global_count((200, 1800), 0.8) == 400
    # real counts 400 * 30/66 and 400 * 36/66: 181.8 and 218.2
    assert (lin, conv) == (182, 218)
    assert lin / 200 > conv / 1800


def test_erk_dense_layers_are_taken_out_and_eps_solved_again():
    # (64, 64), (2, 2), (11, 11): 4221 weights, 844 kept at s = 0.8. First eps = 844 / (128 + 4 + 22)
    # = 5.48: (2, 2) would keep 21.9 of its 4 weights: dense. Re-solved over the rest, eps =
    # (844 - 4) / (128 + 22) = 5.6, and now (11, 11) would keep 123.2 of its 121 (it kept 120.6 before):
    # dense too. The last eps = (844 - 4 - 121) / 128 leaves (64, 64) the other 719
    assert global_count((4096, 4, 121), 0.8) == 844
    assert 844 / 154 * 22 < 121 < 840 / 150 * 22
    assert erk_counts([(64, 64), (2, 2), (11, 11)], 0.8) == (719, 4, 121)
    # every weight kept: every layer dense
    assert erk_counts([(64, 64), (2, 2), (11, 11)], 0.0) == (4096, 4, 121)


def test_erk_keeps_one_weight_per_layer_and_the_exact_total():
    # real counts 0.4, 0.4, 2.2 of a total of 3: lifting the small layers to one weight each takes
    # the large layer's spare weights back, and the total stays exact
    shapes = [(2, 2), (2, 2), (11, 11)]
    assert global_count((4, 4, 121), 0.977) == 3
    assert erk_counts(shapes, 0.977) == (1, 1, 1)
    with pytest.raises(SparsenasError, match="keeps 1 weights, fewer than the 3 layers an ERK mask keeps one each; use sparsities of at most"):
        erk_counts(shapes, 0.99)


def _shapes(parent) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in prunable_params(parent).values()]


def _find(parent, sparsity: float, seed: int = 0):
    ctx = SearchContext(parent, None, None, sparsity, 0, torch.Generator().manual_seed(seed), {}, space="weight")
    return get_finder("random-erk").find(ctx).mask


LENET = build_parent("lenet-300-100", (1, 28, 28), 10, 0)
RESNET = build_parent("resnet20", (1, 28, 28), 10, 0, (4,))


@pytest.mark.parametrize("parent,sparsity,expected", [
    (LENET, 0.9, (18714, 6906, 1000)),  # the classifier's density would be 1.84: dense
    (LENET, 0.98, (3621, 1336, 367)),
    (RESNET, 0.9, None),
    (RESNET, 0.98, None),
])
def test_the_finder_keeps_the_erk_counts_and_the_uniform_total(parent, sparsity, expected):
    shapes = _shapes(parent)
    sizes = tuple(math.prod(s) for s in shapes)
    mask = _find(parent, sparsity)
    mask.validate(parent)
    assert mask.kept_counts() == erk_counts(shapes, sparsity)
    assert sum(mask.kept_counts()) == global_count(sizes, sparsity)
    assert all(1 <= c <= n for c, n in zip(mask.kept_counts(), sizes))
    if expected is not None:
        assert mask.kept_counts() == expected
        assert sum(layer_counts(sizes, sparsity)) == sum(expected)  # lenet's uniform control: same total
    else:
        # ERK moves weights from the wide 3x3 convs to the stem and the classifier
        uniform = layer_counts(sizes, sparsity)
        assert mask.kept_counts()[0] > uniform[0] and mask.kept_counts()[-1] > uniform[-1]


def test_the_finder_is_deterministic_for_one_generator_seed():
    a, b, c = _find(RESNET, 0.9, seed=3), _find(RESNET, 0.9, seed=3), _find(RESNET, 0.9, seed=4)
    assert all(torch.equal(a.tensors[n], b.tensors[n]) for n in a.tensors)
    assert any(not torch.equal(a.tensors[n], c.tensors[n]) for n in a.tensors)
    assert a.kept_counts() == c.kept_counts()


def test_the_node_space_has_no_erk():
    assert get_finder("random-erk").control and get_finder("random-erk").spaces == ("weight",)
    with pytest.raises(SparsenasError, match=r"^finder 'random-erk' searches weight masks only; drop it from --finders or use --space weight$"):
        tiny_spec(space="node", finders=("dense", "random-erk"))


def test_a_run_stores_the_erk_controls_beside_the_uniform_ones(tmp_path):
    spec = tiny_spec(space="weight", finders=("dense", "random", "random-erk"), sparsities=(0.9,), seeds=(0,), epochs=1, controls=2)
    assert run(spec, tmp_path).ran == 1 + 2 + 2  # dense, and two draws of each control
    parent = build_parent("mlp", (1, 8, 8), 10, 0, (32, 16))
    shapes = _shapes(parent)
    sizes = tuple(math.prod(s) for s in shapes)
    with Store(tmp_path) as store:
        trials = store.trials()
        erk = sorted((t for t in trials if t.finder == "random-erk"), key=lambda t: t.control)
        uniform = [t for t in trials if t.finder == "random"]
        assert [t.control for t in erk] == [0, 1] and len(uniform) == 2
        assert all(t.status == "done" and t.space == "weight" for t in erk)
        assert all(t.kept_weights == erk_counts(shapes, 0.9) for t in erk)
        assert all(t.kept_weights == layer_counts(sizes, 0.9) for t in uniform)
        assert sum(erk[0].kept_weights) == global_count(sizes, 0.9) == sum(uniform[0].kept_weights)
        masks = [unpack_weight_mask(store.weight_mask(t.key), parent) for t in erk]
    assert [m.kept_counts() for m in masks] == [erk_counts(shapes, 0.9)] * 2
    assert any(not torch.equal(masks[0].tensors[n], masks[1].tensors[n]) for n in masks[0].tensors)
    assert run(spec, tmp_path).ran == 0  # resumes with nothing left to do


def test_a_sparsity_random_erk_cannot_reach_is_refused_before_anything_trains(tmp_path):
    # mlp (32, 16) on digits has 2,048 + 512 + 160 prunable weights: 0.9995 keeps 1, fewer than its 3 layers
    spec = tiny_spec(space="weight", finders=("dense", "snip", "random-erk"), sparsities=(0.5, 0.9995), seeds=(0,), epochs=1)
    with pytest.raises(SparsenasError, match="sparsity 0.9995 keeps 1 weights, fewer than the 3 layers"):
        run(spec, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # neither bound to the spec nor holding a trained dense parent


def _rigl_densities(shapes: list[tuple[int, ...]], density: float) -> list[float]:
    """RigL's ERK loop as its paper's code runs it (re-typed, not imported): every pass solves eps over
    the layers not yet dense and makes dense only the layers of the highest raw density, until eps
    times that density is at most 1."""
    dense: set[int] = set()
    raw = [sum(s) / math.prod(s) for s in shapes]
    while True:
        rhs = sum(-math.prod(s) * (1 - density) if i in dense else math.prod(s) * density for i, s in enumerate(shapes))
        divisor = sum(raw[i] * math.prod(s) for i, s in enumerate(shapes) if i not in dense)
        eps = rhs / divisor
        top = max(raw[i] for i in range(len(shapes)) if i not in dense)
        if eps * top <= 1:
            return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))]
        dense |= {i for i in range(len(shapes)) if i not in dense and raw[i] == top}


@pytest.mark.parametrize("shapes", [
    [(64, 64), (2, 2), (11, 11)],  # two layers go dense, one per pass in RigL, at once here
    [(8, 16), (4, 8), (4, 2, 3, 3)],
    _shapes(LENET),
    _shapes(RESNET),
])
@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9, 0.98])
def test_erk_quotas_equal_rigls_one_layer_per_pass_loop(shapes, sparsity):
    from sparsenas.masks.weight import _erk_quotas

    sizes = [math.prod(s) for s in shapes]
    total = global_count(tuple(sizes), sparsity)
    rigl = [d * n for d, n in zip(_rigl_densities(shapes, total / sum(sizes)), sizes)]
    assert _erk_quotas(shapes, total) == pytest.approx(rigl, rel=1e-12, abs=1e-9)
