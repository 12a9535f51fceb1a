"""Node masks, allocation, compaction (equal outputs), weight sparsity, parameters and FLOPs."""

from __future__ import annotations

import pytest

from helpers import shipped, tiny_widths
import torch
from torch.utils.flop_counter import FlopCounterMode

from sparsenas.masks import (
    NodeMask, allocate, apply_weight_masks, compact, count_flops, count_params, dense_mask, mask_from_scores,
    random_mask, weight_masks, weight_sparsity,
)
from sparsenas.models import MODELS, as_parent, build_parent
from sparsenas.errors import SparsenasError

SHAPES = {"mlp": (1, 8, 8), "lenet-300-100": (1, 28, 28), "lenet5": (1, 28, 28)}


def test_allocation_rounds_half_up_and_keeps_one():
    p = build_parent("mlp", (1, 8, 8), 10, 0, (300, 100, 3))
    g = p.node_groups()
    assert allocate(g, 0.0) == (300, 100, 3)
    assert allocate(g, 0.5) == (150, 50, 2)
    # 2.5 -> 3 and 3.5 -> 4 (banker's rounding would give 2 and 4)
    five = build_parent("mlp", (1, 8, 8), 10, 0, (5, 5)).node_groups()
    assert allocate(five, 0.5) == (3, 3) and allocate(five, 0.3) == (4, 4)
    assert allocate(g, 0.8) == (60, 20, 1)  # 0.6 -> 1
    assert allocate(g, 0.95) == (15, 5, 1)  # 0.15 -> 0 -> at least 1
    assert allocate(g, 0.99) == (3, 1, 1)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_allocation_rejects_bad_sparsity(bad):
    g = build_parent("mlp", (1, 8, 8), 10, 0, (8,)).node_groups()
    with pytest.raises(SparsenasError, match=r"sparsity must be in \[0, 1\)"):
        allocate(g, bad)


@pytest.mark.parametrize("model", shipped(MODELS))
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
def test_compaction_equals_masked_parent(model, sparsity):
    shape = SHAPES.get(model, (1, 28, 28))
    p = build_parent(model, shape, 10, seed=3, widths=tiny_widths(model))
    g = p.node_groups()
    m = random_mask(g, allocate(g, sparsity), torch.Generator().manual_seed(7))
    small = compact(p, m)
    masked = apply_weight_masks(p, weight_masks(p, m))
    x = torch.randn(32, *shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(small(x), masked(x), rtol=1e-5, atol=1e-5)
    # the compacted net describes itself truthfully
    assert [gg.size for gg in small.node_groups()] == list(m.kept_counts())
    # θ0 restricted to kept nodes: the first hidden layer's kept rows are the parent's rows
    first = g[0].producers[0].tensor
    torch.testing.assert_close(small.get_parameter(first), p.get_parameter(first)[list(m.kept[0])])


def test_compaction_leaves_parent_untouched():
    p = build_parent("mlp", (1, 8, 8), 10, 0, (8, 4))
    before = {k: v.clone() for k, v in p.state_dict().items()}
    compact(p, NodeMask(((0, 3), (1,))))
    for k, v in p.state_dict().items():
        assert torch.equal(v, before[k])


def test_training_the_compacted_net_is_training_the_masked_net():
    """One SGD step on the compacted net equals one on the masked parent with masked gradients."""
    p = build_parent("mlp", (1, 8, 8), 10, 1, (16, 8))
    m = NodeMask((tuple(range(0, 16, 2)), (0, 1, 5)))
    small, masked = compact(p, m), apply_weight_masks(p, weight_masks(p, m))
    wm = weight_masks(p, m)
    x, y = torch.randn(20, 1, 8, 8), torch.randint(0, 10, (20,))
    for net in (small, masked):
        torch.nn.functional.cross_entropy(net(x), y).backward()
        with torch.no_grad():
            for name, prm in net.named_parameters():
                g = prm.grad * wm[name] if net is masked and name in wm else prm.grad
                prm -= 0.1 * g
    torch.testing.assert_close(small(x), masked(x), rtol=1e-5, atol=1e-6)


def test_weight_sparsity_params_and_flops_by_hand():
    # inputs 4, hidden 4 and 2, classes 3 -> prunable weights 4*4 + 4*2 + 2*3 = 30
    p = build_parent("mlp", (1, 2, 2), 3, 0, (4, 2))
    small = compact(p, NodeMask(((1, 2), (0,))))  # keep 2 and 1 -> 4*2 + 2*1 + 1*3 = 13
    assert weight_sparsity(p, small) == pytest.approx(1 - 13 / 30)
    assert count_params(small) == 13 + 2 + 1 + 3  # weights + biases
    assert count_flops(small, (1, 2, 2)) == 2 * 13
    # LeNet-5 on 28x28: conv1 6*28*28 outputs * 25, conv2 16*10*10 * 150, fc 400*120 + 120*84 + 84*10
    lenet = build_parent("lenet5", (1, 28, 28), 10, 0)
    macs = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10
    assert count_flops(lenet, (1, 28, 28)) == 2 * macs


def _library_flops(net: torch.nn.Module, shape: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net.eval()(torch.zeros(1, *shape))  # eval: BatchNorm takes a batch of one
    return counter.get_total_flops()


@pytest.mark.parametrize("model", shipped(MODELS))
def test_flops_agree_with_torchs_flop_counter(model: str):
    # our convention is torch's on every net a run can build (docs/library_choices.md): a
    # multiply-add is 2, biases, activations and pooling are 0; so the library checks our counter
    shape = SHAPES.get(model, (1, 28, 28))
    p = build_parent(model, shape, 10, 0, widths=tiny_widths(model))
    g = p.node_groups()
    for s in (0.0, 0.5, 0.9):
        net = compact(p, random_mask(g, allocate(g, s), torch.Generator().manual_seed(0)))
        assert count_flops(net, shape) == _library_flops(net, shape)
    seq = as_parent(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(13, 16), torch.nn.SiLU(), torch.nn.Linear(16, 3)), (13,))
    assert count_flops(seq, (13,)) == _library_flops(seq, (13,)) == 2 * (13 * 16 + 16 * 3)


def test_weight_masks_store_what_compaction_keeps():
    p = build_parent("lenet5", (1, 28, 28), 10, 0)
    g = p.node_groups()
    m = random_mask(g, allocate(g, 0.5), torch.Generator().manual_seed(1))
    wm = weight_masks(p, m)
    small = compact(p, m)
    for name in p.prunable_weights():
        if name in wm:
            assert int(wm[name].sum()) == small.get_parameter(name).numel()
    assert dense_mask(g).kept_counts() == tuple(x.size for x in g)


def test_random_mask_is_seeded_and_uniform():
    g = build_parent("mlp", (1, 8, 8), 10, 0, (10,)).node_groups()
    a = random_mask(g, (3,), torch.Generator().manual_seed(5))
    b = random_mask(g, (3,), torch.Generator().manual_seed(5))
    assert a == b
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(10)
    for _ in range(2000):
        counts[list(random_mask(g, (3,), gen).kept[0])] += 1
    # each node is kept with probability 0.3: 600 expected, sd ~20
    assert (counts - 600).abs().max() < 100


def test_mask_from_scores_and_validation():
    g = build_parent("mlp", (1, 8, 8), 10, 0, (4, 3)).node_groups()
    m = mask_from_scores(g, [torch.tensor([1.0, 3.0, 3.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])], (2, 1))
    assert m.kept == ((1, 2), (2,))
    with pytest.raises(ValueError, match="empties"):
        NodeMask(((0,), ())).validate(g)
    with pytest.raises(ValueError, match="sorted unique"):
        NodeMask(((2, 1), (0,))).validate(g)
