"""The channel-pruning finders (`l1-norm`, `bn-scale`) against scores worked out by hand on a toy
conv net with known weights, and network slimming's penalty against one SGD step done by hand.

The toy (input 1x2x2): conv1 (1->3, 1x1) + bn1, conv2 (3->3, 1x1) + bn2 added to bn1's output (a
residual: conv1 and conv2 channels form one node group of 3), conv3 (3->2, 1x1) + bn3 (a group of
2), mean over the image, fc (2->2; 2->10 where it trains on digits).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsenas.data import load_dataset
from sparsenas.errors import SparsenasError
from sparsenas.finders import SearchContext, SearchCost, get_finder
from sparsenas.finders.bn_scale import BnScaleOptions, bn_scale_names, slimmed_parent
from sparsenas.masks import NodeMask
from sparsenas.models import as_parent, build_parent
from sparsenas.protocol import RunSpec, run
from sparsenas.train import TrainSpec, train_population


class Toy(nn.Module):
    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 3, 1, bias=False), nn.BatchNorm2d(3)
        self.conv2, self.bn2 = nn.Conv2d(3, 3, 1, bias=False), nn.BatchNorm2d(3)
        self.conv3, self.bn3 = nn.Conv2d(3, 2, 1, bias=False), nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(self.conv1(x)))
        b = F.relu(self.bn2(self.conv2(a)) + a)
        c = F.relu(self.bn3(self.conv3(b)))
        return self.fc(c.mean((2, 3)))


def toy(classes: int = 2, shape: tuple[int, ...] = (1, 2, 2)) -> nn.Module:
    net = as_parent(Toy(classes), shape)
    with torch.no_grad():
        net.conv1.weight.copy_(torch.tensor([1.0, -2.0, 3.0]).view(3, 1, 1, 1))
        net.conv2.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.0, -1.0, 0.0], [0.5, 0.0, 0.0]]).view(3, 3, 1, 1))
        net.conv3.weight.copy_(torch.tensor([[0.1, 0.1, 0.1], [-1.0, 0.0, 2.0]]).view(2, 3, 1, 1))
        net.bn1.weight.copy_(torch.tensor([0.1, -0.5, 0.2]))
        net.bn2.weight.copy_(torch.tensor([0.3, 0.1, -0.05]))
        net.bn3.weight.copy_(torch.tensor([0.01, 0.02]))
    return net


def _ctx(parent, finder: str, sparsity: float, allocation: str = "per-layer", options=None) -> SearchContext:
    opts = options if options is not None else get_finder(finder).Options()
    data = load_dataset("digits", limit=32)
    return SearchContext(parent, data, TrainSpec(epochs=1), sparsity, 0, torch.Generator(), opts, allocation=allocation)


COST = SearchCost(steps=7, flops=1.0, seconds=1.0)


def test_the_toy_has_the_groups_the_hand_values_assume():
    assert [(g.name, g.size) for g in toy().node_groups()] == [("conv1", 3), ("conv3", 2)]


def test_l1_norm_ranks_filters_by_the_l1_norm_of_their_weights_summed_over_a_residual_group():
    parent = toy()
    ctx = _ctx(parent, "l1-norm", 0.4)
    ctx.memo["trained_dense"] = (toy(), COST)  # "trained": the known weights; the finder trains nothing more
    found = get_finder("l1-norm").find(ctx)
    # group conv1: conv1 rows |1|, |-2|, |3| plus conv2 rows 3, 1, 0.5 -> 4, 3, 3.5; group conv3: 0.3, 3
    assert [s.tolist() for s in found.scores] == [[4.0, 3.0, 3.5], [pytest.approx(0.3), 3.0]]
    assert found.mask.kept == ((0, 2), (1,))  # per layer: round(0.6 * 3) = 2 and round(0.6 * 2) = 1
    assert found.cost == COST and found.init is None  # charged the parent's training; rewound to θ0


def test_l1_norm_on_the_mlp_toy_keeps_the_unit_of_larger_l1_norm():
    parent = build_parent("mlp", (1, 1, 2), 2, 0, (2,))
    trained = copy.deepcopy(parent)
    with torch.no_grad():
        trained.fc1.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))  # L1 norms 3 and 3.5
    ctx = _ctx(parent, "l1-norm", 0.5)
    ctx.memo["trained_dense"] = (trained, COST)
    assert get_finder("l1-norm").find(ctx).mask.kept == ((1,),)


def test_bn_scale_ranks_channels_by_their_mean_absolute_batchnorm_scale():
    ctx = _ctx(toy(), "bn-scale", 0.4)
    ctx.memo[("bn-scale", BnScaleOptions().bn_penalty)] = (toy(), COST)
    found = get_finder("bn-scale").find(ctx)
    # (|bn1| + |bn2|) / 2 = 0.2, 0.3, 0.125 (a residual stream's channel has two scales: their mean); |bn3| = 0.01, 0.02
    assert [s.tolist() for s in found.scores] == [pytest.approx([0.2, 0.3, 0.125]), pytest.approx([0.01, 0.02])]
    assert found.mask.kept == ((0, 1), (1,))
    assert found.cost == COST and found.init is None


def test_bn_scale_with_global_allocation_is_the_papers_one_threshold_over_the_network():
    ctx = _ctx(toy(), "bn-scale", 0.2, allocation="global")
    ctx.memo[("bn-scale", BnScaleOptions().bn_penalty)] = (toy(), COST)
    # keep round(0.8 * 5) = 4: conv3's best channel (each group keeps one), then 0.3, 0.2, 0.125 over
    # the network; per layer it would keep 2 of 3 and 2 of 2
    assert get_finder("bn-scale").find(ctx).mask.kept == ((0, 1, 2), (1,))


def test_bn_scale_penalty_adds_lambda_times_the_sign_of_each_scale_to_its_gradient():
    # one full-batch plain SGD step: the slimmed parent differs from the plain one only in the BN
    # scales, by exactly -lr * λ * sign(γ0)
    data = load_dataset("digits", limit=16)
    parent = as_parent(nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 10)), data.input_shape)
    with torch.no_grad():
        parent[1].weight.copy_(torch.tensor([0.5, -0.25, 1.0]))
    spec = TrainSpec(epochs=1, batch_size=len(data.train), lr=0.1, momentum=0.0)
    lam = 0.5
    ctx = SearchContext(parent, data, spec, 0.5, 0, torch.Generator(), BnScaleOptions(bn_penalty=lam))
    slim, cost = slimmed_parent(ctx)
    plain = copy.deepcopy(parent)
    train_population([plain], data, spec, data_seed=0)
    assert bn_scale_names(parent) == ["1.weight"] and cost.steps == 1 and cost.flops > 0
    for (n, a), b in zip(slim.state_dict().items(), plain.state_dict().values()):
        if n == "1.weight":
            torch.testing.assert_close(a, b - 0.1 * lam * torch.tensor([1.0, -1.0, 1.0]))
        else:
            assert torch.equal(a, b), n
    assert not any(p._backward_hooks for p in slim.parameters())  # the hooks are gone once it has trained
    assert slimmed_parent(ctx)[0] is slim  # once per seed and λ


def test_bn_scale_at_zero_penalty_ranks_the_plain_trained_parent():
    ctx = _ctx(toy(), "bn-scale", 0.4, options=BnScaleOptions(bn_penalty=0.0))
    ctx.memo["trained_dense"] = (toy(), COST)  # what magnitude, imp and l1-norm rank
    assert get_finder("bn-scale").find(ctx).mask.kept == ((0, 1), (1,))


def test_bn_scale_trains_its_parent_and_finds_a_mask_at_the_target():
    ctx = _ctx(toy(10, (1, 8, 8)), "bn-scale", 0.4)  # digits: 10 classes of 8x8 images
    found = get_finder("bn-scale").find(ctx)
    assert isinstance(found.mask, NodeMask) and found.mask.kept_counts() == (2, 1)
    assert found.cost.steps > 0 and found.cost.seconds > 0


def test_a_run_with_bn_scale_on_a_parent_without_batchnorm_is_refused_before_anything_is_stored(tmp_path):
    spec = RunSpec(finders=("bn-scale",), sparsities=(0.5,), seeds=(0,), limit=32, train=TrainSpec(epochs=1))
    with pytest.raises(SparsenasError, match="node group 'fc1' of parent 'mlp' has none; use l1-norm"):
        run(spec, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_penalty_option_is_checked():
    with pytest.raises(SparsenasError, match="--bn-penalty must be a finite number >= 0"):
        RunSpec(finders=("bn-scale",), bn_penalty=float("nan")).validate()


def test_bn_scale_global_ranks_a_residual_channel_by_its_mean_scale_beside_single_batchnorm_channels():
    trained = toy()
    with torch.no_grad():
        trained.bn3.weight.copy_(torch.tensor([0.35, -0.32]))
    ctx = _ctx(toy(), "bn-scale", 0.4, allocation="global")
    ctx.memo[("bn-scale", BnScaleOptions().bn_penalty)] = (trained, COST)
    # keep 3: conv3's best (0.35), then 0.32 (conv3) and 0.3 (the residual stream's mean of 0.5 and 0.1);
    # summed, the residual channels (0.6, 0.4) would have pushed conv3's second channel out
    assert get_finder("bn-scale").find(ctx).mask.kept == ((1,), (0, 1))


class HalfNormedCat(nn.Module):
    """Two branches concatenated, one BatchNorm over the concatenation: the left branch has no
    BatchNorm of its own (its channels have one scale), the right has one (its channels have two)."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Conv2d(1, 2, 1, bias=False)
        self.right, self.br = nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([F.relu(self.left(x)), F.relu(self.br(self.right(x)))], dim=1)
        return self.fc(F.relu(self.bn(h)).mean((2, 3)))


class MixedCat(nn.Module):
    """Two branches concatenated under one BatchNorm: the left branch has two BatchNorms of its own
    before it (three scales per channel), the right one (two)."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.bl1 = nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2)
        self.left2, self.bl2 = nn.Conv2d(2, 2, 1, bias=False), nn.BatchNorm2d(2)
        self.right, self.br = nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bl1(self.left(x)))
        a = F.relu(self.bl2(self.left2(a)) + a)  # a residual: left and left2 write one group
        h = torch.cat([a, F.relu(self.br(self.right(x)))], dim=1)
        return self.fc(F.relu(self.bn(h)).mean((2, 3)))


def test_bn_scale_counts_scales_per_group_under_a_batchnorm_that_spans_a_concatenation():
    net = as_parent(HalfNormedCat(), (1, 2, 2))
    with torch.no_grad():
        net.br.weight.copy_(torch.tensor([0.2, -0.4]))
        net.bn.weight.copy_(torch.tensor([0.3, -0.1, 0.6, 0.2]))
    ctx = _ctx(as_parent(HalfNormedCat(), (1, 2, 2)), "bn-scale", 0.5)
    ctx.memo[("bn-scale", BnScaleOptions().bn_penalty)] = (net, COST)
    found = get_finder("bn-scale").find(ctx)
    # left: |bn[0:2]| alone = 0.3, 0.1; right: (|br| + |bn[2:4]|) / 2 = 0.4, 0.3 (the left's count is
    # its own 1, not the right's 2, although both read one BatchNorm)
    assert [s.tolist() for s in found.scores] == [pytest.approx([0.3, 0.1]), pytest.approx([0.4, 0.3])]
    assert found.mask.kept == ((0,), (0,))


def test_only_parents_whose_masks_the_per_group_count_moved_get_another_bn_scale_key():
    from sparsenas.protocol.plan import make_plan

    bn = get_finder("bn-scale")
    # HalfNormedCat: the left group's one slice was divided by the right group's 2, a factor per layer
    # (same mask) but not under the global threshold; the right group's two slices shared the divisor 2
    assert bn.key_facts(as_parent(HalfNormedCat(), (1, 2, 2))) == {}
    assert bn.key_facts(as_parent(HalfNormedCat(), (1, 2, 2)), "global") == {"bn_count": "per-group"}
    # MixedCat: the right group's own BatchNorm (divisor 2) and its concatenation slice (old divisor
    # 3, the last group's) weighed unequally before: its per-layer ranking moved too
    assert bn.key_facts(as_parent(MixedCat(), (1, 2, 2))) == {"bn_count": "per-group"}
    for net in (toy(), build_parent("resnet20", (1, 8, 8), 10, 0, (2,))):
        assert bn.key_facts(net) == bn.key_facts(net, "global") == {}
    spec = RunSpec(finders=("dense", "random", "bn-scale"), seeds=(0,), sparsities=(0.5,))
    plain, moved = make_plan(spec, (2, 2)), make_plan(spec, (2, 2), facts={"bn-scale": {"bn_count": "per-group"}})
    assert [(t.finder, t.key == u.key) for t, u in zip(plain, moved)] == [("dense", True), ("random", True), ("bn-scale", False)]


def test_both_channel_finders_take_every_start_on_a_resnet(tmp_path):
    """The README's channel run in miniature: resnet20 (width 4) on digits, l1-norm and bn-scale, each
    from θ0, scratch-e, scratch-b and finetune, beside dense and the random control."""
    from helpers import tiny_spec
    from sparsenas.masks import compact
    from sparsenas.protocol.starts import scratch_b_epochs
    from sparsenas.store import Store
    from sparsenas.train import Population

    spec = tiny_spec(model="resnet20", widths=(4,), limit=200, finders=("dense", "random", "l1-norm", "bn-scale"),
                     starts=("scratch-e", "scratch-b", "finetune"), finetune_epochs=1, seeds=(0,), sparsities=(0.5,), epochs=2)
    assert run(spec, tmp_path).ran == 1 + 1 + 2 * 4
    with Store(tmp_path) as s:
        t = {(t.finder, t.check): t for t in s.trials()}
    dense = t[("dense", "")]
    for finder in ("l1-norm", "bn-scale"):
        e, b, ft = t[(finder, "scratch-e")], t[(finder, "scratch-b")], t[(finder, "finetune")]
        assert all(x.status == "done" for x in (e, b, ft)) and e.node_mask == b.node_mask == ft.node_mask == t[(finder, "")].node_mask
        assert e.curve[0] == b.curve[0] != t[(finder, "")].curve[0]  # one fresh init for both scratch arms, not θ0
        assert len(e.curve) - 1 == 2 and len(b.curve) - 1 == scratch_b_epochs(2, dense.flops, b.flops) == 4
        assert len(ft.curve) - 1 == 1
    # bn-scale's finetune starts from the parent it ranked (trained with the penalty), cut to its mask:
    # that parent trained again here gives its epoch 0
    data = load_dataset("digits", limit=200)
    parent = build_parent("resnet20", data.input_shape, data.num_classes, 0, (4,))
    ctx = SearchContext(parent, data, spec.train, 0.5, 0, torch.Generator(), BnScaleOptions())
    slimmed, _ = slimmed_parent(ctx)
    ft = t[("bn-scale", "finetune")]
    loss, _ = Population([compact(slimmed, NodeMask(ft.node_mask))], TrainSpec()).evaluate(data.val)
    assert loss[0] == pytest.approx(ft.curve[0].val_loss, rel=1e-5)
    from sparsenas.export import load_trained

    _, _, plain, _ = load_trained(tmp_path, dense.key)  # the parent trained without the penalty
    plain_loss, _ = Population([compact(plain, NodeMask(ft.node_mask))], TrainSpec()).evaluate(data.val)
    assert plain_loss[0] != pytest.approx(ft.curve[0].val_loss, rel=1e-3)
