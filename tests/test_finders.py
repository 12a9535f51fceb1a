"""Every registered finder on every parent, on tiny data; random-search picks the proxy's best."""

from __future__ import annotations

import pytest

from helpers import SAME_CODE_AS, shipped, tiny_widths
import torch

from sparsenas.data import load_dataset
from sparsenas.errors import SparsenasError
from sparsenas.finders import FINDERS, SearchContext, get_finder
from sparsenas.finders.options import FinderOptions
from sparsenas.finders.scoring import prunable_params
from sparsenas.masks import NodeMask, WeightMask, allocate, compact, erk_counts, global_count, layer_counts, random_mask
from sparsenas.models import MODELS, build_parent
from sparsenas.train import TrainSpec, evaluate

@pytest.fixture(scope="module")
def mnist_small():
    return load_dataset("mnist5k", limit=64)


def _ctx(parent, data, sparsity, seed=0, space="node", allocation="per-layer", options=FinderOptions()):
    return SearchContext(
        parent, data, TrainSpec(epochs=1, batch_size=16), sparsity, seed, torch.Generator().manual_seed(seed),
        options, space=space, allocation=allocation,
    )


def _halving_steps(o) -> int:
    """Successive halving's candidate-steps, rung by rung: every survivor trains eta x the steps."""
    alive, steps, total = o.candidates, o.halving_steps, 0
    while True:
        total += alive * steps
        if -(-alive // o.halving_eta) == 1:
            return total
        alive, steps = -(-alive // o.halving_eta), steps * o.halving_eta


def _cases():
    for model in shipped(MODELS):
        if model in SAME_CODE_AS:
            continue
        for name in shipped(FINDERS):
            for space in get_finder(name).spaces:
                yield model, name, space


@pytest.mark.parametrize("model,finder,space", list(_cases()))
def test_every_finder_on_every_parent_in_every_space(model, finder, space, mnist_small):
    parent = build_parent(model, mnist_small.input_shape, 10, seed=0, widths=tiny_widths(model))
    before = {k: v.clone() for k, v in parent.state_dict().items()}
    f = get_finder(finder)
    ctx = _ctx(parent, mnist_small, 0.8, space=space, options=f.Options.tiny())
    try:
        f.check_parent(parent, model)
    except SparsenasError as refused:  # bn-scale on a parent without BatchNorm: find refuses alike
        with pytest.raises(SparsenasError, match="has none; use l1-norm"):
            f.find(ctx)
        assert f.name == "bn-scale" and model in str(refused)
        return
    found = f.find(ctx)
    if space == "node":
        groups = parent.node_groups()
        found.mask.validate(groups)
        if not f.front:  # a front member has the widths the search chose, no target sparsity
            expected = tuple(g.size for g in groups) if f.sparsity_free else allocate(groups, 0.8)
            assert found.mask.kept_counts() == expected
    elif f.sparsity_free:
        assert isinstance(found.mask, NodeMask)  # dense is the parent in every space
    else:
        assert isinstance(found.mask, WeightMask)
        found.mask.validate(parent)
        sizes = tuple(p.numel() for p in prunable_params(parent).values())
        if finder == "imp":  # the classifier is pruned at half the rate: the total lands on target
            assert abs(found.mask.sparsity() - 0.8) < 1e-3
        elif finder == "random-erk":  # ERK densities per layer, the global total
            shapes = [tuple(p.shape) for p in prunable_params(parent).values()]
            assert found.mask.kept_counts() == erk_counts(shapes, 0.8)
            assert sum(found.mask.kept_counts()) == global_count(sizes, 0.8)
        else:
            assert found.mask.kept_counts() == layer_counts(sizes, 0.8)
    # finders never touch the parent's init
    assert all(torch.equal(v, before[k]) for k, v in parent.state_dict().items())
    if f.scored:
        assert found.scores is not None
    if f.has_search_cost:  # what the finder declares, so a new finder needs no entry here
        assert found.cost.flops > 0 and found.cost.seconds > 0
    else:
        assert (found.cost.candidates, found.cost.steps, found.cost.flops) == (0, 0, 0)


@pytest.mark.parametrize("finder,steps", [
    ("random-search", lambda o: o.candidates * o.proxy_steps),
    ("halving", _halving_steps),
])
def test_search_steps_follow_the_options(finder, steps, mnist_small):
    parent = build_parent("mlp", mnist_small.input_shape, 10, seed=0)
    o = get_finder(finder).Options.tiny()
    assert get_finder(finder).find(_ctx(parent, mnist_small, 0.8, options=o)).cost.steps == steps(o)


def test_random_search_keeps_the_candidate_with_lowest_val_loss(digits_small):
    parent = build_parent("mlp", digits_small.input_shape, 10, seed=2, widths=(32, 16))
    ctx = _ctx(parent, digits_small, 0.9, seed=5, options=get_finder("random-search").Options(candidates=6, proxy_steps=0))
    found = get_finder("random-search").find(ctx)
    # redraw the same six candidates from the same generator seed and score them by hand
    gen = torch.Generator().manual_seed(5)
    groups = parent.node_groups()
    cands = [random_mask(groups, allocate(groups, 0.9), gen) for _ in range(6)]
    losses = [evaluate(compact(parent, c), digits_small.val)[0] for c in cands]
    assert found.mask == cands[losses.index(min(losses))]
    assert len(set(losses)) > 1  # the proxy actually distinguishes candidates here


def test_random_control_is_a_draw_from_the_same_sampler(digits_small):
    parent = build_parent("mlp", digits_small.input_shape, 10, seed=0, widths=(32, 16))
    a = get_finder("random").find(_ctx(parent, digits_small, 0.5, seed=4)).mask
    gen = torch.Generator().manual_seed(4)
    assert a == random_mask(parent.node_groups(), allocate(parent.node_groups(), 0.5), gen)
