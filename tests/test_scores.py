"""Each finder's score checked against values computed by hand on a toy network with known weights.

The toy: input (1, 1, 2), one hidden layer of 2 ReLU units, 2 classes, biases zero,
fc1.weight = [[1, -2], [3, 0.5]], out.weight = [[1, 2], [-1, 1]], input x = [1, 1], label 0.
Forward: pre-activations [-1, 3.5], hidden [0, 3.5], logits [7, 3.5].
"""

from __future__ import annotations

import math

import pytest
import torch

from sparsenas.data import Dataset, Split
from sparsenas.finders import SearchContext, SearchCost, get_finder
from sparsenas.finders.grasp import grasp_scores
from sparsenas.finders.snip import snip_scores
from sparsenas.finders.synflow import synflow_scores
from sparsenas.masks import NodeMask, WeightMask
from sparsenas.models import build_parent
from sparsenas.models.mlp import MLP
from sparsenas.train import TrainSpec

W1 = [[1.0, -2.0], [3.0, 0.5]]
W2 = [[1.0, 2.0], [-1.0, 1.0]]


def toy(w1=W1, w2=W2):
    net = build_parent("mlp", (1, 1, 2), 2, 0, (2,))
    with torch.no_grad():
        net.fc1.weight.copy_(torch.tensor(w1))
        net.out.weight.copy_(torch.tensor(w2))
        net.fc1.bias.zero_()
        net.out.bias.zero_()
    return net


X = torch.ones(1, 1, 1, 2)
Y = torch.tensor([0])


def close(a: torch.Tensor, b: list) -> bool:
    return torch.allclose(a.double(), torch.tensor(b, dtype=torch.float64), atol=1e-6)


def test_snip_is_abs_gradient_times_weight():
    p1 = 1.0 / (1.0 + math.exp(3.5))  # softmax of logits [7, 3.5], class 1
    # dL/dlogits = [-p1, p1]; dL/d out.weight = outer(dlogits, h = [0, 3.5])
    # dL/dh = out.weightᵀ dlogits = [-2 p1, -p1]; ReLU passes unit 1 only; dL/d fc1.weight row 1 = -p1 * x
    s = snip_scores(toy(), X, Y)
    assert close(s["out.weight"], [[0.0, 3.5 * p1 * 2], [0.0, 3.5 * p1 * 1]])
    assert close(s["fc1.weight"], [[0.0, 0.0], [p1 * 3, p1 * 0.5]])


def test_synflow_is_flow_through_absolute_weights_and_is_conserved():
    # |W| with ones in: hidden [3, 3.5], out [10, 6.5], R = 16.5
    # dR/d out[i, j] = h_j; dR/dh = column sums of |out| = [2, 3]; dR/d fc1[j, k] = dR/dh_j * 1
    s = synflow_scores(toy(), (1, 1, 2))
    assert close(s["out.weight"], [[3.0, 7.0], [3.0, 3.5]])
    assert close(s["fc1.weight"], [[2.0, 4.0], [9.0, 1.5]])
    # synaptic saliency is conserved: every layer carries the whole flow R, every node in = out
    assert float(s["fc1.weight"].sum()) == pytest.approx(16.5) == float(s["out.weight"].sum())
    assert s["fc1.weight"].sum(1).tolist() == pytest.approx(s["out.weight"].sum(0).tolist())


def test_grasp_is_weight_times_hessian_gradient_product():
    """On a linear softmax model the Hessian-gradient product has a closed form.

    With p = softmax(Wx/T), g = (p - e_y) xᵀ / T and u = g x: Hg[k, l] = x_l p_k (u_k - Σ_i u_i p_i) / T².
    """
    net = MLP((1, 1, 3), 3, ())  # no hidden layer: out = W x + b
    w = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-0.2, 0.8, 1.1]], dtype=torch.float64)
    x = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    with torch.no_grad():
        net.out.weight.copy_(w)
        net.out.bias.zero_()
    t, y = 2.0, 1
    p = torch.softmax(w @ x / t, 0)
    e = torch.zeros(3, dtype=torch.float64)
    e[y] = 1
    g = torch.outer(p - e, x) / t
    u = g @ x
    hg = torch.outer(p * (u - (u * p).sum()), x) / t**2
    s = grasp_scores(net.double(), x.view(1, 1, 1, 3), torch.tensor([y]), temperature=t)
    assert torch.allclose(s["out.weight"], w * hg, atol=1e-10)


def _ctx(net, sparsity, space, allocation="per-layer", **options):
    data = Dataset("toy", *(Split(X.view(1, 1, 1, 2).repeat(4, 1, 1, 1), torch.tensor([0, 1, 0, 1])) for _ in range(3)), 2)
    return SearchContext(net, data, TrainSpec(epochs=1, batch_size=4), sparsity, 0, torch.Generator().manual_seed(0),
                         options, space=space, allocation=allocation)


def test_magnitude_keeps_the_largest_trained_weights_and_nodes():
    trained = toy()  # stands in for the trained dense parent
    ctx = _ctx(toy(), 0.5, "weight", "global")
    ctx.memo["trained_dense"] = (trained, SearchCost(steps=7))
    found = get_finder("magnitude").find(ctx)
    # |w| = fc1 [1, 2, 3, .5], out [1, 2, 1, 1]; the top 4 of 8: 3, 2, 2, then the first 1 (fc1[0, 0])
    assert found.mask.tensors["fc1.weight"].tolist() == [[True, True], [True, False]]
    assert found.mask.tensors["out.weight"].tolist() == [[False, True], [False, False]]
    assert found.cost.steps == 7  # the dense training is the search cost
    node_ctx = _ctx(toy(), 0.5, "node")
    node_ctx.memo["trained_dense"] = (trained, SearchCost())
    # node norms² of incoming weights: unit 0: 1 + 4 = 5, unit 1: 9 + .25: unit 1 is kept
    assert get_finder("magnitude").find(node_ctx).mask == NodeMask(((1,),))


def test_imp_one_round_is_magnitude_pruning_and_the_chain_is_shared():
    trained = toy()
    options = {"imp_rate": 0.5, "rewind_steps": 0}
    ctx = _ctx(toy(), 0.5, "weight", "global", **options)
    ctx.memo["trained_dense"] = (trained, SearchCost(steps=3))
    found = get_finder("imp").find(ctx)
    # one round at rate 0.5 lands on 0.5: the same global magnitude mask as above, from round 0
    assert found.mask.tensors["fc1.weight"].tolist() == [[True, True], [True, False]]
    assert found.cost.steps == 3 and found.init is None
    # a sparser target extends the chain in the same memo: round 1 is trained, its cost is added
    deeper = get_finder("imp").find(_ctx_like(ctx, 0.8))
    assert deeper.cost.steps > 3 and abs(deeper.mask.sparsity() - 0.8) < 1e-9 + 1 / 8


def _ctx_like(ctx, sparsity):
    import dataclasses

    return dataclasses.replace(ctx, sparsity=sparsity)


def test_imp_mask_does_not_depend_on_other_sparsities_asked(digits_small):
    parent = build_parent("mlp", digits_small.input_shape, 10, 0, (16, 8))
    opts = {"imp_rate": 0.3, "rewind_steps": 2}
    spec = TrainSpec(epochs=1, batch_size=32)

    def ctx(s, memo):
        return SearchContext(parent, digits_small, spec, s, 0, torch.Generator(), opts, space="weight", memo=memo)

    shared: dict = {}
    get_finder("imp").find(ctx(0.5, shared))
    both = get_finder("imp").find(ctx(0.9, shared))
    alone = get_finder("imp").find(ctx(0.9, {}))
    assert all(torch.equal(both.mask.tensors[n], alone.mask.tensors[n]) for n in both.mask.tensors)
    assert both.init is not None  # rewound to step 2, not to θ0
    assert not torch.equal(both.init["fc1.weight"], parent.fc1.weight.detach())


def test_inversion_keeps_the_lowest_scores_at_the_same_counts():
    from sparsenas.protocol.checks import derive
    from sparsenas.finders.base import Found

    scores = {"fc1.weight": torch.tensor([[4.0, 3.0], [2.0, 1.0]]), "out.weight": torch.tensor([[1.0, 2.0], [3.0, 4.0]])}
    mask = WeightMask({"fc1.weight": torch.tensor([[True, True], [False, False]]), "out.weight": torch.tensor([[False, False], [False, True]])})
    inv = derive("invert", Found(mask, scores=scores), toy(), torch.Generator()).mask
    assert inv.tensors["fc1.weight"].tolist() == [[False, False], [True, True]]
    assert inv.tensors["out.weight"].tolist() == [[True, False], [False, False]]
    shuffled = derive("shuffle", Found(mask, scores=scores), toy(), torch.Generator().manual_seed(1)).mask
    assert shuffled.kept_counts() == mask.kept_counts()


def test_synflow_inversion_ranks_the_one_shot_scores(digits_small):
    """Iterative finders hand the inversion their first round's scores (defined for every unit),
    so the inverted mask keeps each layer's lowest-scoring weights, not the earliest-pruned ones."""
    from sparsenas.protocol.checks import derive

    parent = build_parent("mlp", digits_small.input_shape, 10, 0, (32, 16))
    ctx = SearchContext(parent, digits_small, TrainSpec(), 0.9, 0, torch.Generator(), {"synflow_iterations": 5}, space="weight")
    found = get_finder("synflow").find(ctx)
    one_shot = synflow_scores(parent, digits_small.input_shape)
    assert all(torch.equal(found.scores[n], one_shot[n]) for n in one_shot)
    inv = derive("invert", found, parent, torch.Generator()).mask
    assert inv.kept_counts() == found.mask.kept_counts()
    for n, keep in inv.tensors.items():
        # every kept weight scores no higher than every removed one, layer by layer
        assert one_shot[n][keep].max() <= one_shot[n][~keep].min()
    assert int(inv.tensors["fc1.weight"].any(1).sum()) > 8  # spread over the layer, not its first rows


def test_node_synflow_global_does_not_starve_later_layers(digits_small):
    parent = build_parent("mlp", digits_small.input_shape, 10, 0)
    ctx = SearchContext(parent, digits_small, TrainSpec(), 0.9, 0, torch.Generator(), {"synflow_iterations": 20},
                        space="node", allocation="global")
    kept = get_finder("synflow").find(ctx).mask.kept_counts()
    assert sum(kept) == 38 and min(kept) > 5  # a kept node is not charged for the pruned nodes it reads


def test_node_imp_never_brings_back_a_pruned_node(digits_small):
    parent = build_parent("mlp", digits_small.input_shape, 10, 0, (32, 6))
    memo: dict = {}
    ctx = SearchContext(parent, digits_small, TrainSpec(epochs=1, batch_size=64), 0.9, 0, torch.Generator(),
                        {"imp_rate": 0.2, "rewind_steps": 0}, space="node", memo=memo)
    final = get_finder("imp").find(ctx).mask
    chain = next(v for k, v in memo.items() if k[0] == "imp")
    last = max((m for m in chain.masks if m.node_sparsity(parent.node_groups()) < 0.9), key=lambda m: m.node_sparsity(parent.node_groups()))
    assert all(set(f) <= set(l) for f, l in zip(final.kept, last.kept))
