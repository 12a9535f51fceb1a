"""The field's parents: CIFAR ResNet-20/32/56 and VGG-11/16 with BatchNorm, as plain modules.

The first part checks the modules themselves (shapes, sizes, init, widths, tracing). The second part
builds them as parents, which needs node-group discovery that follows BatchNorm and residual adds;
it skips, saying so, until `discover_node_groups` handles a conv + BatchNorm + conv chain.
"""

from __future__ import annotations

import operator

import pytest
import torch
import torch.fx as fx
from torch import nn

from sparsenas.cli import main
from sparsenas.errors import SparsenasError
from sparsenas.masks import allocate, apply_weight_masks, compact, random_mask, weight_masks
from sparsenas.models import MODELS, Parent, build_parent, discover_node_groups, init_parameters
from sparsenas.models.base import vmapped_forward
from sparsenas.models.mlp import MLP

RESNETS = {"resnet20": 3, "resnet32": 5, "resnet56": 9}  # name: n, blocks per stage
VGGS = {"vgg11-bn": 8, "vgg16-bn": 13}  # name: conv layers
ZOO = [*RESNETS, *VGGS]
TINY = {**{r: (4,) for r in RESNETS}, **{v: (8,) for v in VGGS}}
SHAPES = [(1, 28, 28), (3, 32, 32)]


def _build(name: str, shape: tuple[int, ...] = (3, 32, 32), widths: tuple[int, ...] | None = None) -> nn.Module:
    return MODELS.get(name)(shape, 10, widths)


def _weight_layers(m: nn.Module) -> list[str]:
    """The Conv2d and Linear layers on the main path: projection shortcuts are not counted."""
    return [n for n, mod in m.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear)) and "shortcut" not in n]


def _conv_widths(m: nn.Module) -> list[int]:
    return [mod.out_channels for mod in m.modules() if isinstance(mod, nn.Conv2d)]


# ---- the modules ----------------------------------------------------------------------------------


def _forward_cases():
    for name in ZOO:
        for shape in SHAPES:
            yield pytest.param(name, shape, TINY[name], id=f"{name}-tiny-{'x'.join(map(str, shape))}")
        # at the default widths each deep net runs once, on CIFAR's shape, to keep the file fast
        for shape in SHAPES if name in ("resnet20", "vgg11-bn") else SHAPES[1:]:
            yield pytest.param(name, shape, None, id=f"{name}-default-{'x'.join(map(str, shape))}")


@pytest.mark.parametrize("name, shape, widths", list(_forward_cases()))
def test_forward_gives_one_logit_per_class(name, shape, widths):
    m = _build(name, shape, widths)
    assert isinstance(m, nn.Module) and not isinstance(m, Parent)  # discovery finds the groups
    with torch.no_grad():
        y = m(torch.randn(2, *shape, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


def test_resnets_run_on_the_8x8_digits():
    # the default dataset: two stride-2 stages leave 2x2, which global pooling averages
    with torch.no_grad():
        assert _build("resnet20", (1, 8, 8), (4,))(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_parameter_counts_match_the_papers():
    # He et al. report 0.27M and 0.85M with zero-padded identity shortcuts ("option A"). Ours are
    # 1x1 conv + BN projections ("option B", open_lth's): stage 2's adds 16*32 + 2*32 = 576 parameters
    # and stage 3's 32*64 + 2*64 = 2176, so resnet20 has 269,722 + 2,752 = 272,474.
    counts = {name: sum(p.numel() for p in _build(name).parameters()) for name in ZOO}
    assert counts["resnet20"] == 272_474
    assert counts["resnet32"] == 466_906  # paper: 0.46M
    assert counts["resnet56"] == 855_770  # paper: 0.85M; 853,018 with option A
    # open_lth's CIFAR VGG-16 has 14,728,266 with conv biases (4,224 of them, all 0 under BatchNorm)
    assert counts["vgg16-bn"] == 14_728_266 - 4_224
    assert counts["vgg11-bn"] == 9_231_114 - 2_752


@pytest.mark.parametrize("name", RESNETS)
def test_resnets_have_6n_plus_2_weight_layers(name):
    n = RESNETS[name]
    m = _build(name, widths=(4,))
    layers = _weight_layers(m)
    assert len(layers) == 6 * n + 2 and layers[0] == "conv1" and layers[-1] == "fc"
    # projections only where a block changes shape: entering stages 2 and 3
    projections = sorted({k.rsplit(".shortcut", 1)[0] for k, _ in m.named_parameters() if ".shortcut." in k})
    assert projections == ["layer2.0", "layer3.0"]
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert all(c.bias is None for c in convs)  # BatchNorm follows every conv
    assert sum(isinstance(mod, nn.BatchNorm2d) for mod in m.modules()) == len(convs)


@pytest.mark.parametrize("name", VGGS)
def test_vggs_have_their_plans_conv_layers(name):
    m = _build(name, widths=(8,))
    assert len(_weight_layers(m)) == VGGS[name] + 1  # the convs and one classifier
    assert sum(isinstance(mod, nn.MaxPool2d) for mod in m.modules()) == 4
    assert sum(isinstance(mod, nn.BatchNorm2d) for mod in m.modules()) == VGGS[name]
    assert all(mod.bias is None for mod in m.modules() if isinstance(mod, nn.Conv2d))


@pytest.mark.parametrize("name", ["resnet20", "vgg11-bn"])
def test_sparsenas_init_is_seeded_and_follows_he_et_al(name):
    def init(seed: int, global_seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(global_seed)  # construction draws from global state; the init must not
        m = _build(name)
        m.sparsenas_init(torch.Generator().manual_seed(seed))
        return m.state_dict()

    a, b, c = init(0, 1), init(0, 2), init(1, 1)
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, whatever the global state: bit-identical
    differ = {k for k in a if not torch.equal(a[k], c[k])}
    assert differ == {
        k for k, t in _build(name).named_parameters() if t.dim() > 1 or k.endswith("fc.bias") or k.endswith("classifier.bias")
    }
    m = _build(name)
    rng = torch.get_rng_state()
    m.sparsenas_init(torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), rng)  # nothing drawn from the global generator
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            assert torch.equal(mod.weight, torch.ones_like(mod.weight)) and torch.equal(mod.bias, torch.zeros_like(mod.bias))
            assert torch.equal(mod.running_mean, torch.zeros_like(mod.running_mean))
            assert torch.equal(mod.running_var, torch.ones_like(mod.running_var))
    # Kaiming normal, fan_out, ReLU gain: std sqrt(2 / (out_channels * 3 * 3)) on the widest convs
    wide = [mod.weight for mod in m.modules() if isinstance(mod, nn.Conv2d) and mod.kernel_size == (3, 3)][-1]
    expected = (2 / (wide.shape[0] * 9)) ** 0.5
    std, mean = float(wide.detach().std()), float(wide.detach().mean())
    assert abs(std / expected - 1) < 0.03 and abs(mean) < 0.05 * expected


class _OwnInitMLP(MLP):
    """An MLP whose θ0 is all normal(0, 1), so a test sees whether `build_parent` used it."""

    def sparsenas_init(self, generator: torch.Generator) -> None:
        for p in self.parameters():
            nn.init.normal_(p, generator=generator)


@MODELS.register("test-zoo-own-init", help="test: an MLP with its own seeded initializer")
def _own_init(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> _OwnInitMLP:
    return _OwnInitMLP(input_shape, num_classes, widths or (8,))


def test_build_parent_calls_a_models_own_init_and_keeps_the_default_otherwise():
    p = build_parent("test-zoo-own-init", (1, 8, 8), 10, seed=5)
    expected = _OwnInitMLP((1, 8, 8), 10, (8,))
    g = torch.Generator().manual_seed(5)
    for t in expected.parameters():
        nn.init.normal_(t, generator=g)
    assert all(torch.equal(a, b) for a, b in zip(p.parameters(), expected.parameters()))
    # a model without one keeps PyTorch's default init, bit for bit (stored trials depend on it)
    q = build_parent("lenet5", (1, 28, 28), 10, seed=5)
    ref = MODELS.get("lenet5")((1, 28, 28), 10, None)
    init_parameters(ref, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(q.parameters(), ref.parameters()))


@pytest.mark.parametrize(
    "name, widths, convs",
    [
        ("resnet20", None, [16] + [16] * 6 + [32] * 6 + [32] + [64] * 6 + [64]),
        ("resnet20", (4,), [4] + [4] * 6 + [8] * 6 + [8] + [16] * 6 + [16]),
        ("resnet20", (8, 8, 24), [8] + [8] * 6 + [8] * 6 + [8] + [24] * 6 + [24]),
        ("vgg11-bn", (8,), [8, 16, 32, 32, 64, 64, 64, 64]),
        ("vgg11-bn", (3, 5, 7, 9, 11, 13, 15, 17), [3, 5, 7, 9, 11, 13, 15, 17]),
        ("vgg16-bn", None, [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]),
        ("vgg16-bn", tuple(range(1, 14)), list(range(1, 14))),
    ],
)
def test_widths_set_every_conv(name, widths, convs):
    m = _build(name, widths=widths)
    # a ResNet's modules list each block's conv1, conv2, then its projection (stages 2 and 3)
    assert _conv_widths(m) == convs
    assert next(mod for mod in m.modules() if isinstance(mod, nn.Linear)).in_features == convs[-1]


@pytest.mark.parametrize(
    "name, widths, message",
    [
        (
            "resnet20",
            (16, 32),
            r"^resnet20 takes --widths W \(the first stage's width; stages get W, 2W, 4W\) or three positive widths W1,W2,W3 \(one per stage\), got 16,32; e\.g\. --widths 16$",
        ),
        ("resnet56", (0,), r"^resnet56 takes --widths W .* got 0;"),
        (
            "vgg11-bn",
            tuple(range(1, 14)),
            r"^vgg11-bn takes --widths W \(the first conv's width, default 64; the others keep the plan's ratios\) or 8 positive widths, one per conv layer, got 1,2,3,4,5,6,7,8,9,10,11,12,13;",
        ),
        ("vgg16-bn", (64, 128), r"^vgg16-bn takes .* or 13 positive widths"),
    ],
)
def test_bad_widths_are_one_line(name, widths, message):
    with pytest.raises(SparsenasError, match=message) as e:
        _build(name, widths=widths)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("resnet20", (784,), r"^resnet20 needs image inputs \(C, H, W\), got shape \(784,\); use --model mlp$"),
        ("resnet56", (1, 7, 8), r"^resnet56 needs images of at least 8x8, got 7x8; use --model mlp for this dataset$"),
        ("vgg16-bn", (3, 32), r"^vgg16-bn needs image inputs \(C, H, W\), got shape \(3, 32\); use --model mlp$"),
        ("vgg11-bn", (1, 8, 8), r"^vgg11-bn needs images of at least 16x16, got 8x8; use --model resnet20 \(8x8 and up\) or mlp$"),
    ],
)
def test_inputs_the_net_cannot_take_are_one_line(name, shape, message):
    with pytest.raises(SparsenasError, match=message):
        _build(name, shape, TINY[name])


@pytest.mark.parametrize("name", ZOO)
def test_torch_fx_traces_them_and_the_trace_computes_the_same(name):
    m = _build(name, (3, 32, 32), TINY[name]).eval()
    gm = fx.symbolic_trace(m)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gm(x), m(x), rtol=0, atol=0)
    adds = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is operator.add]
    # `out += self.shortcut(x)` traces as one add per block; the identity shortcut leaves no node
    assert len(adds) == (3 * RESNETS[name] if name in RESNETS else 0)


@pytest.mark.parametrize("name", ["resnet20", "vgg11-bn"])
def test_a_population_of_them_trains_like_each_member_alone(name):
    # population training vmaps forward over stacked parameters and buffers, in train mode: the
    # in-place residual add and BatchNorm's running-statistics update must survive vmap
    nets = [_build(name, widths=TINY[name]) for _ in range(2)]
    for seed, net in enumerate(nets):
        net.sparsenas_init(torch.Generator().manual_seed(seed))
    tensors = [dict(net.named_parameters()) | dict(net.named_buffers()) for net in nets]
    stacked = {k: torch.stack([t[k].detach() for t in tensors]) for k in tensors[0]}  # (K, ...)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = vmapped_forward(nets[0])(stacked, x)  # (K, B, classes)
    for k, net in enumerate(nets):
        torch.testing.assert_close(y[k], net(x))  # updates the member's running statistics too
        for name_, t in net.named_buffers():
            torch.testing.assert_close(stacked[name_][k], t)


def test_sparsenas_list_shows_them(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ZOO:
        assert f"  {name} " in out


# ---- as parents: skipped until discovery follows BatchNorm and residual adds -----------------------


def _discovery_handles_bn() -> bool:
    """Whether `discover_node_groups` takes a conv + BatchNorm + conv chain (the lead's discovery rewrite)."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
    try:
        discover_node_groups(net, (1, 8, 8))
    except SparsenasError:
        return False
    return True


needs_bn_discovery = pytest.mark.skipif(not _discovery_handles_bn(), reason="node-group discovery does not handle BatchNorm yet")


@needs_bn_discovery
@pytest.mark.parametrize("shape", SHAPES, ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("name", ZOO)
def test_build_parent_builds_each_seeded(name, shape):
    p = build_parent(name, shape, 10, seed=0, widths=TINY[name])
    q = build_parent(name, shape, 10, seed=0, widths=TINY[name])
    r = build_parent(name, shape, 10, seed=1, widths=TINY[name])
    assert isinstance(p, Parent) and p.node_groups()
    assert all(torch.equal(a, b) for a, b in zip(p.state_dict().values(), q.state_dict().values()))
    assert any(not torch.equal(a, b) for a, b in zip(p.state_dict().values(), r.state_dict().values()))
    bns = [m for m in p.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in bns)
    with torch.no_grad():
        assert p(torch.zeros(2, *shape)).shape == (2, 10)


def _stream_and_block_groups(widths: tuple[int, int, int]) -> list[tuple[set[str], int]]:
    """resnet20's expected groups as (the convs producing the group's channels, size).

    Three residual streams, one a stage: the stem conv and every block's conv2 in stage 1 write into
    one stream (identity shortcuts); in stages 2 and 3 the projection shortcut starts the stream and
    every conv2 adds to it. Each block's conv1 is a group of its own.
    """
    w = dict(zip((1, 2, 3), widths))
    streams = [
        ({"conv1", *(f"layer1.{b}.conv2" for b in range(3))}, w[1]),
        *(({f"layer{s}.0.shortcut.0", *(f"layer{s}.{b}.conv2" for b in range(3))}, w[s]) for s in (2, 3)),
    ]
    blocks = [({f"layer{s}.{b}.conv1"}, w[s]) for s in (1, 2, 3) for b in range(3)]
    return streams + blocks


@needs_bn_discovery
def test_resnet20_has_one_group_per_stream_and_per_block():
    p = build_parent("resnet20", (3, 32, 32), 10, seed=0, widths=(4,))
    convs = {n for n, m in p.named_modules() if isinstance(m, nn.Conv2d)}
    groups = p.node_groups()
    assert len(groups) == 12 and sorted(g.size for g in groups) == [4] * 4 + [8] * 4 + [16] * 4
    found = [({s.tensor.removesuffix(".weight") for s in g.producers if s.tensor.removesuffix(".weight") in convs}, g.size) for g in groups]
    assert sorted(found, key=lambda f: sorted(f[0])) == sorted(_stream_and_block_groups((4, 8, 16)), key=lambda f: sorted(f[0]))
    for g in groups:
        produced = {s.tensor for s in g.producers}
        for conv in {t.removesuffix(".weight") for t in produced if t.removesuffix(".weight") in convs}:
            # the BatchNorm after each producing conv follows its channels, running statistics too
            bn = conv.replace("conv", "bn") if not conv.endswith("shortcut.0") else conv[:-1] + "1"
            assert {f"{bn}.{t}" for t in ("weight", "bias", "running_mean", "running_var")} <= produced
    # the last stream is what the classifier reads, after global average pooling: one column a channel
    last = next(g for g in groups if "layer3.0.shortcut.0.weight" in {s.tensor for s in g.producers})
    assert [(s.tensor, s.dim, s.block) for s in last.consumers if s.tensor == "fc.weight"] == [("fc.weight", 1, 1)]


@needs_bn_discovery
@pytest.mark.parametrize("name", ["resnet20", "vgg11-bn"])
def test_a_compacted_parent_computes_what_the_masked_parent_computes(name):
    p = build_parent(name, (3, 32, 32), 10, seed=0, widths=TINY[name]).eval()
    g = p.node_groups()
    mask = random_mask(g, allocate(g, 0.5), torch.Generator().manual_seed(1))
    small, masked = compact(p, mask), apply_weight_masks(p, weight_masks(p, mask))
    assert [gg.size for gg in small.node_groups()] == list(mask.kept_counts())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(x), masked.eval()(x), rtol=1e-5, atol=1e-5)
