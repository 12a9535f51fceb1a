"""The field's networks as users write them: BatchNorm, residual adds, concatenation.

Discovery must find the coupled groups (every conv writing into one residual stream, BatchNorm with
the layer before it), and compaction must give a smaller dense network whose outputs equal the
masked parent's, in eval mode and, after training steps, in train mode (batch statistics). The
weight space must leave BatchNorm alone: never pruned, never a reason to call a trial collapsed.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsenas.masks import NodeMask, WeightMask, allocate, apply_weight_masks, compact, connected, expand, random_mask, weight_masks
from sparsenas.masks.groups import check_node_groups
from sparsenas.models import Parent, TensorSlice, as_parent, discover_node_groups
from sparsenas.train import Population, TrainSpec


class BasicBlock(nn.Module):
    """torchvision's style: `out = out + identity`, identity projected when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        return F.relu(out)


class TinyResNet(nn.Module):
    """Stem, a stage of two identity blocks, a stage opening with a projection block."""

    def __init__(self, w: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(w)
        self.layer1 = nn.Sequential(BasicBlock(w, w, 1), BasicBlock(w, w, 1))
        self.layer2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w, 1))
        self.fc = nn.Linear(2 * w, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class PlusEqualsBlock(nn.Module):
    """The CIFAR ResNet as many papers' code writes it: in-place `+=`, an empty Sequential shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.b1(self.c1(x)))
        out = self.b2(self.c2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class PlusEqualsResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.blocks = nn.Sequential(PlusEqualsBlock(4, 4, 1), PlusEqualsBlock(4, 8, 2))
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        out = F.avg_pool2d(out, out.size(3))
        return self.head(out.view(out.size(0), -1))


class CatNet(nn.Module):
    """Two conv+BN branches concatenated along channels, a BN over the concatenation, a conv reading it."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.bl = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.right, self.br = nn.Conv2d(3, 5, 1), nn.BatchNorm2d(5)
        self.bn = nn.BatchNorm2d(8)
        self.mix = nn.Conv2d(8, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([F.relu(self.bl(self.left(x))), F.relu(self.br(self.right(x)))], dim=1)
        h = F.max_pool2d(F.relu(self.mix(self.bn(h))), 2)
        return self.fc(h.flatten(1))


def plain_cnn_bn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 10),
    )  # fmt: skip


def vgg_bn() -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    for v in (4, "M", 8, 8, "M", 16):
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1, bias=False), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def flatten_bn() -> nn.Module:
    """A BatchNorm1d over a flatten: each channel owns a block of the BatchNorm's entries."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.BatchNorm1d(4 * 3 * 3), nn.Linear(36, 10))


def depthwise() -> nn.Module:
    """MobileNet's separable conv: a depthwise conv's filters follow the channels it reads."""
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 8, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )  # fmt: skip


ARCHITECTURES = {
    "cnn-bn": plain_cnn_bn,
    "resnet": TinyResNet,
    "vgg-bn": vgg_bn,
    "resnet-plus-equals": PlusEqualsResNet,
    "cat": CatNet,
    "flatten-bn": flatten_bn,
    "depthwise": depthwise,
}
SHAPE = (3, 8, 8)


def _parent(name: str) -> Parent:
    torch.manual_seed(0)
    net = ARCHITECTURES[name]()
    with torch.no_grad():  # BatchNorm away from its init, so a wrong slice of it would show
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return as_parent(net, SHAPE)


# ---- discovery ----------------------------------------------------------------------------------


def test_resnet_stages_are_coupled_groups():
    groups = {g.name: g for g in discover_node_groups(TinyResNet(), SHAPE)}
    # one stream per stage, named by its first writer in forward order (here the projection shortcut,
    # which this forward runs first); one group per block's first conv
    assert {n: g.size for n, g in groups.items()} == {
        "conv": 4, "layer1.0.conv1": 4, "layer1.1.conv1": 4, "layer2.0.downsample.0": 8, "layer2.0.conv1": 8, "layer2.1.conv1": 8,
    }  # fmt: skip
    stage1 = {s.tensor for s in groups["conv"].producers}
    assert {"conv.weight", "bn.weight", "bn.running_var", "layer1.0.conv2.weight", "layer1.1.bn2.bias"} <= stage1
    assert {s.tensor for s in groups["conv"].consumers} == {
        "layer1.0.conv1.weight", "layer1.1.conv1.weight", "layer2.0.conv1.weight", "layer2.0.downsample.0.weight",
    }  # fmt: skip
    stage2 = {s.tensor for s in groups["layer2.0.downsample.0"].producers}
    assert {"layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean", "layer2.1.conv2.weight"} <= stage2
    assert {s.tensor for s in groups["layer2.0.downsample.0"].consumers} == {"layer2.1.conv1.weight", "fc.weight"}


def test_plus_equals_and_an_empty_shortcut_are_followed():
    groups = {g.name: g for g in discover_node_groups(PlusEqualsResNet(), SHAPE)}
    assert sorted(groups) == ["blocks.0.c1", "blocks.1.c1", "blocks.1.c2", "stem.0"]
    assert {s.tensor for s in groups["stem.0"].producers} >= {"stem.0.weight", "stem.1.weight", "blocks.0.c2.weight", "blocks.0.b2.bias"}


def test_concatenation_gives_each_branch_its_offset():
    groups = {g.name: g for g in discover_node_groups(CatNet(), SHAPE)}
    assert groups["left"].consumers == (TensorSlice("mix.weight", 1),)
    assert groups["right"].consumers == (TensorSlice("mix.weight", 1, 1, 3),)
    # the BatchNorm over the concatenation is cut by both branches, each at its own offset
    assert TensorSlice("bn.running_mean", 0, 1, 3) in groups["right"].producers
    assert TensorSlice("bn.running_mean", 0) in groups["left"].producers


def test_a_depthwise_conv_follows_the_channels_it_reads():
    groups = discover_node_groups(depthwise(), SHAPE)
    assert [(g.name, g.size) for g in groups] == [("0", 6), ("6", 8)]
    assert [s.tensor for s in groups[0].producers] == [
        "0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "3.weight", "4.weight", "4.bias", "4.running_mean", "4.running_var",
    ]  # fmt: skip
    assert groups[0].consumers == (TensorSlice("6.weight", 1),)  # the depthwise conv's dim 1 (size 1) is never cut
    parent = _parent("depthwise")
    small = compact(parent, NodeMask(((0, 2, 5), tuple(range(8)))))
    assert small[3].groups == small[3].in_channels == small[3].out_channels == 3


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_discovered_groups_pass_the_compaction_check(name):
    check_node_groups(_parent(name), SHAPE, name)


# ---- compaction equals masking ------------------------------------------------------------------


def _masked(parent: Parent, mask: NodeMask) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    masks = weight_masks(parent, mask)
    return apply_weight_masks(parent, masks), masks


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_compacted_equals_masked_in_eval_and_after_training_in_train_mode(name):
    parent = _parent(name)
    groups = parent.node_groups()
    mask = random_mask(groups, allocate(groups, 0.5), torch.Generator().manual_seed(1))
    small = compact(parent, mask)
    masked, masks = _masked(parent, mask)
    x = torch.randn(6, *SHAPE, generator=torch.Generator().manual_seed(2))
    small.eval(), masked.eval()
    torch.testing.assert_close(small(x), masked(x), atol=1e-5, rtol=1e-5)
    assert tuple(g.size for g in small.node_groups()) == mask.kept_counts()

    # three SGD steps in train mode (batch statistics, running statistics updated) on each
    y = torch.randint(0, 10, (6,), generator=torch.Generator().manual_seed(3))
    small.train(), masked.train()
    for net, keep in ((small, {}), (masked, masks)):
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        params = dict(net.named_parameters()) | dict(net.named_buffers())
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
            with torch.no_grad():
                for n, m in keep.items():
                    params[n].mul_(m)
    torch.testing.assert_close(small(x), masked(x), atol=1e-4, rtol=1e-4)  # train mode: batch statistics
    small.eval(), masked.eval()
    torch.testing.assert_close(small(x), masked(x), atol=1e-4, rtol=1e-4)  # eval mode: running statistics
    # expanding the trained small net gives the trained masked parent, running statistics included
    full = expand(parent, mask, small)
    state = dict(masked.named_parameters()) | dict(masked.named_buffers())
    for n, t in (dict(full.named_parameters()) | dict(full.named_buffers())).items():
        if n in masks:
            torch.testing.assert_close(t * masks[n], state[n] * masks[n], atol=1e-5, rtol=1e-5)


def test_compaction_keeps_batchnorm_sizes_truthful():
    parent = _parent("resnet")
    mask = random_mask(parent.node_groups(), allocate(parent.node_groups(), 0.5), torch.Generator().manual_seed(0))
    small = compact(parent, mask)
    for m in small.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.num_features == m.weight.shape[0] == m.running_mean.shape[0]


# ---- populations --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet", "cat", "depthwise"])
def test_batchnorm_population_equals_each_member_alone(name):
    parent = _parent(name)
    groups = parent.node_groups()
    counts = allocate(groups, 0.5)
    nets = [compact(parent, random_mask(groups, counts, torch.Generator().manual_seed(s))) for s in range(3)]
    alone = [copy.deepcopy(n) for n in nets]
    x = torch.randn(8, *SHAPE, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(1))
    spec = TrainSpec(lr=0.1)
    pop = Population(nets, spec)
    for _ in range(3):
        pop.step(x, y, 0.1)
    pop.write_back(nets)
    for net in alone:
        solo = Population([net], spec)
        for _ in range(3):
            solo.step(x, y, 0.1)
    for a, b in zip(nets, alone):
        for (n, t), u in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(t, u, atol=1e-5, rtol=1e-5, msg=lambda m, n=n: f"{n}: {m}")  # running stats too
        a.eval(), b.eval()
        torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


# ---- the weight space ---------------------------------------------------------------------------


def test_batchnorm_never_makes_a_weight_mask_collapse():
    parent = _parent("resnet")
    full = WeightMask({n: torch.ones_like(dict(parent.named_parameters())[n], dtype=torch.bool) for n in parent.prunable_weights()})
    assert not any(n.startswith(("bn", "layer1.0.bn")) for n in full.tensors)  # BatchNorm is not prunable
    eff = connected(parent, full, SHAPE)
    assert eff.kept_counts() == full.kept_counts()  # every weight lies on a path: BatchNorm passes them
    # cut the stem's output channel 0 everywhere it is read and written: its weights drop out, the rest stay
    t = {n: m.clone() for n, m in full.tensors.items()}
    t["conv.weight"][1:] = False
    t["fc.weight"][:] = True
    eff = connected(parent, WeightMask(t), SHAPE)
    assert eff.tensors["conv.weight"][0].all() and not eff.tensors["conv.weight"][1:].any()
    assert sum(eff.kept_counts()) > 0


# ---- what the review of this work found -------------------------------------------------------


def test_an_emptied_shortcut_does_not_collapse_a_resnet(digits_small):
    from sparsenas.finders.base import Found
    from sparsenas.models import build_parent
    from sparsenas.protocol.trial import _size, build_net

    parent = build_parent("resnet20", (1, 8, 8), 10, seed=0, widths=(4,))
    params = dict(parent.named_parameters())
    keep = {n: torch.ones_like(params[n], dtype=torch.bool) for n in parent.prunable_weights()}
    keep["layer2.0.shortcut.0.weight"][:] = False  # the residual stream still carries the input
    found = Found(WeightMask(keep))
    size = _size(parent, digits_small, found, build_net(parent, found)[0])
    assert not size["collapsed"] and size["effective_sparsity"] < 0.1
    keep["layer1.0.conv1.weight"][:] = False
    keep["conv1.weight"][:] = False  # the stem feeds every path: nothing reaches the classifier
    found = Found(WeightMask(keep))
    assert _size(parent, digits_small, found, build_net(parent, found)[0])["collapsed"]


def test_probing_forwards_leave_batchnorm_statistics_and_accept_1x1_maps():
    from sparsenas.masks import count_flops
    from sparsenas.models import build_parent
    from sparsenas.train.memory import activation_floats

    parent = build_parent("vgg11-bn", (1, 28, 28), 10, seed=0, widths=(2,))  # its last convs see 1x1 maps
    before = {k: v.clone() for k, v in parent.state_dict().items()}
    assert activation_floats(parent, (1, 28, 28)) > 0 and count_flops(parent, (1, 28, 28)) > 0
    assert parent.training and all(torch.equal(v, before[k]) for k, v in parent.state_dict().items())


def test_discovery_leaves_batchnorm_statistics_alone():
    net = plain_cnn_bn()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    as_parent(net, SHAPE)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


class SqueezeExcite(nn.Module):
    """A channel gate (B, C, H, W) * (B, C, 1, 1), global pooling by mean((2, 3)), in-place ops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.squeeze, self.excite = nn.Linear(8, 4), nn.Linear(4, 8)
        self.conv2, self.relu, self.fc = nn.Conv2d(8, 6, 3), nn.ReLU(inplace=True), nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.conv(x)))
        g = torch.sigmoid(self.excite(F.relu(self.squeeze(h.mean((2, 3))))))
        h = h * g.view(h.size(0), -1, 1, 1)
        h = self.conv2(h)
        self.relu(h)  # in place, result unassigned
        h.sigmoid_()
        return self.fc(h.mean([2, 3])).clamp_(-20, 20)


class CatInput(nn.Module):
    """A layer's channels concatenated with the input's (not prunable) channels."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(7, 5, 3), nn.Linear(5 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.b(torch.cat([F.relu(self.a(x)), x], 1)).flatten(1))


@pytest.mark.parametrize("cls", [SqueezeExcite, CatInput])
def test_gates_in_place_ops_and_a_concatenated_input_compact_exactly(cls):
    torch.manual_seed(0)
    parent = as_parent(cls(), SHAPE)
    groups = parent.node_groups()
    if cls is SqueezeExcite:  # the gate's rows scale the conv's channels: they are one group
        assert [(g.name, g.size) for g in groups] == [("conv", 8), ("squeeze", 4), ("conv2", 6)]
        assert "excite.weight" in {s.tensor for s in groups[0].producers}
    else:
        assert groups[0].consumers == (TensorSlice("b.weight", 1),) and groups[0].size == 4
    check_node_groups(parent, SHAPE, cls.__name__)
    mask = random_mask(groups, allocate(groups, 0.5), torch.Generator().manual_seed(0))
    small, (masked, _) = compact(parent, mask), _masked(parent, mask)
    x = torch.randn(4, *SHAPE)
    torch.testing.assert_close(small.eval()(x), masked.eval()(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "net, words",
    [
        (nn.Sequential(nn.Linear(3 * 8 * 8, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)), "track_running_stats=False"),
        (nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=2), nn.Flatten(), nn.Linear(8 * 4 * 4, 2)), "grouped convolution"),
    ],
)
def test_what_discovery_cannot_follow_is_one_line(net, words):
    from sparsenas.errors import SparsenasError

    shape = (192,) if isinstance(net[0], nn.Linear) else SHAPE
    with pytest.raises(SparsenasError, match=words) as err:
        as_parent(net, shape)
    assert "\n" not in str(err.value)


def test_a_model_returning_a_tuple_is_refused_at_build_time():
    from sparsenas.errors import SparsenasError

    class Features(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.a(x)
            return self.b(h), h

    with pytest.raises(SparsenasError, match="returns a tuple, not one tensor of logits"):
        as_parent(Features(), (4,))


def test_a_depthwise_conv_cut_to_one_channel_stays_depthwise():
    parent = _parent("depthwise")
    small = compact(parent, NodeMask(((4,), (0, 1))))
    assert [g.size for g in small.node_groups()] == [1, 2]
