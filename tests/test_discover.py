"""Node groups discovered by torch.fx, `as_parent`, and the from_tensors / from_torch_dataset wrappers.

A discovered parent must be indistinguishable from a hand-declared one: the same groups as LeNet-5's
own declaration, compaction equal to masking, deepcopy and pickle, and training in populations. What
discovery cannot describe must fail with one SparsenasError line naming the layer.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import TensorDataset

from sparsenas.data import DATASETS, from_tensors, from_torch_dataset
from sparsenas.errors import SparsenasError
from sparsenas.masks import allocate, apply_weight_masks, compact, random_mask, weight_masks
from sparsenas.models import MODELS, Parent, TensorSlice, as_parent, build_parent, discover_node_groups
from sparsenas.protocol import RunSpec, run
from sparsenas.store import Store
from sparsenas.train import TrainSpec


def lenet5_sequential(num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 as a plain Sequential, with the layer names of `sparsenas.models.lenet5.LeNet5`."""
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 6, 5, padding=2), r1=nn.ReLU(), p1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(6, 16, 5), r2=nn.ReLU(), p2=nn.MaxPool2d(2),
        flat=nn.Flatten(),
        fc1=nn.Linear(16 * 5 * 5, 120), r3=nn.ReLU(),
        fc2=nn.Linear(120, 84), r4=nn.ReLU(),
        out=nn.Linear(84, num_classes),
    ))


class Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 3, padding=1, bias=False)
        self.mix = nn.Conv2d(5, 7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(torch.tanh(self.mix(F.relu(self.conv(x)))), 2)


class CustomNet(nn.Module):
    """A hand-written forward: functional ops, a nested module, view(x.size(0), -1), a softmax tail."""

    def __init__(self) -> None:
        super().__init__()
        self.features = Features()
        self.hidden = nn.Linear(7 * 3 * 3, 12)
        self.head = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 7, 3, 3) from 8x8 inputs
        x = x.view(x.size(0), -1)
        x = F.dropout(F.gelu(self.hidden(x)), 0.5, self.training)
        return F.log_softmax(self.head(x), dim=-1)


# ---- discovery ----------------------------------------------------------------------------------

def test_sequential_mlp():
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Dropout(), nn.Linear(16, 10))
    groups = discover_node_groups(net, (1, 8, 8))
    assert [(g.name, g.size) for g in groups] == [("1", 32), ("3", 16)]
    assert groups[0].producers == (TensorSlice("1.weight", 0), TensorSlice("1.bias", 0))
    assert groups[0].consumers == (TensorSlice("3.weight", 1),)
    assert groups[1].consumers == (TensorSlice("6.weight", 1),)


def test_conv_chain_block_is_spatial_size_and_matches_lenet5():
    groups = discover_node_groups(lenet5_sequential(), (1, 28, 28))
    assert groups[1].name == "conv2" and groups[1].consumers == (TensorSlice("fc1.weight", 1, 5 * 5),)
    assert groups == build_parent("lenet5", (1, 28, 28), 10, seed=0).node_groups()


def test_custom_forward_with_functional_ops_and_nested_modules():
    groups = discover_node_groups(CustomNet(), (1, 8, 8))
    assert [(g.name, g.size) for g in groups] == [("features.conv", 5), ("features.mix", 7), ("hidden", 12)]
    assert groups[0].producers == (TensorSlice("features.conv.weight", 0),)  # bias=False: the weight only
    assert groups[0].consumers == (TensorSlice("features.mix.weight", 1),)
    assert groups[1].consumers == (TensorSlice("hidden.weight", 1, 9),)
    assert groups[2].consumers == (TensorSlice("head.weight", 1),)


def test_discovery_leaves_rng_and_training_mode_alone():
    net = CustomNet()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    discover_node_groups(net, (1, 8, 8))  # runs F.dropout(training=True): it must not shift the stream
    assert torch.equal(torch.rand(3), expected) and net.training


# ---- as_parent ----------------------------------------------------------------------------------

def masked_and_compacted_agree(parent: Parent, sparsity: float, x: torch.Tensor) -> None:
    groups = parent.node_groups()
    mask = random_mask(groups, allocate(groups, sparsity), torch.Generator().manual_seed(0))
    small = compact(parent, mask)
    masked = apply_weight_masks(parent, weight_masks(parent, mask))
    torch.testing.assert_close(small(x), masked(x), atol=1e-5, rtol=1e-5)
    # the compacted copy traces its own, sliced layers
    assert tuple(g.size for g in small.node_groups()) == mask.kept_counts()


def test_compacting_a_discovered_parent_equals_masking_it():
    torch.manual_seed(0)
    masked_and_compacted_agree(as_parent(lenet5_sequential().eval(), (1, 28, 28)), 0.6, torch.randn(4, 1, 28, 28))
    masked_and_compacted_agree(as_parent(CustomNet().eval(), (1, 8, 8)), 0.5, torch.randn(4, 1, 8, 8))


def test_as_parent_keeps_the_module_and_its_repr():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    before = repr(net)
    p = as_parent(net, (4,))
    assert p is net and isinstance(p, Parent) and isinstance(p, nn.Sequential)
    assert repr(p) == before and p.sparsenas_input_shape == (4,)
    assert as_parent(p, (4,)) is p
    lenet = build_parent("lenet5", (1, 28, 28), 10, seed=0)
    assert as_parent(lenet, (1, 28, 28)) is lenet and type(lenet).__name__ == "LeNet5"


def test_refused_module_is_left_untouched():
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    with pytest.raises(SparsenasError):
        as_parent(net, (4,))
    assert type(net) is nn.Sequential and "sparsenas_input_shape" not in net.__dict__


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))], ids=["deepcopy", "pickle"])
def test_copies_stay_discovered_parents(clone):
    p = as_parent(CustomNet().eval(), (1, 8, 8))
    q = clone(p)
    assert isinstance(q, Parent) and isinstance(q, CustomNet) and q.features.conv.weight is not p.features.conv.weight
    assert q.node_groups() == p.node_groups()
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(q(x), p(x))
    masked_and_compacted_agree(q, 0.5, x)


def test_cloudpickle_round_trip():
    cloudpickle = pytest.importorskip("cloudpickle")
    p = as_parent(lenet5_sequential(), (1, 28, 28))
    q = cloudpickle.loads(cloudpickle.dumps(p))
    assert isinstance(q, Parent) and q.node_groups() == p.node_groups()


@MODELS.register("test-discover-convnet", help="test: a plain Sequential convnet for 8x8 inputs")
def plain_convnet(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> nn.Module:
    c1, c2 = widths or (6, 16)
    return nn.Sequential(
        nn.Conv2d(input_shape[0], c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c1 * (input_shape[1] // 2) * (input_shape[2] // 2), c2), nn.ReLU(),
        nn.Linear(c2, num_classes),
    )


def test_build_parent_discovers_a_plain_constructor():
    p = build_parent("test-discover-convnet", (1, 8, 8), 10, seed=3, widths=(4, 8))
    q = build_parent("test-discover-convnet", (1, 8, 8), 10, seed=3, widths=(4, 8))
    assert isinstance(p, Parent) and torch.equal(p[0].weight, q[0].weight)  # seeded init, as for shipped models
    assert [(g.name, g.size, g.consumers[0].block) for g in p.node_groups()] == [("0", 4, 16), ("4", 8, 1)]


# ---- refusals: one line that names the layer ---------------------------------------------------

class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.b(torch.relu(self.a(x)))
        return self.out(x)


class Branch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c, self.out = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.out(self.b(h) * self.c(h))


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.out = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        if h.sum() > 0:
            h = -h
        return self.out(h)


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.out = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.out(self.a(x) + y)


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w1, self.w2 = nn.Parameter(torch.randn(4, 4)), nn.Parameter(torch.randn(2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.relu(F.linear(x, self.w1)), self.w2)


class SpatialFlatten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.out = nn.Conv2d(1, 3, 3), nn.Linear(36, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.conv(x).flatten(2)).mean(1)  # (B, C, H*W): each column mixes channels


class BroadcastAdd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 1, 3), nn.Linear(144, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out((self.a(x) + self.b(x)).flatten(1))  # (B, 4, 6, 6) + (B, 1, 6, 6): one channel added to all


class OwnBias(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.out = nn.Linear(4, 4), nn.Linear(4, 2)
        self.shift = nn.Parameter(torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.a(x) + self.shift)


class CatBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.out = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.out(torch.cat([h, h.neg()], 0))


REFUSED = {
    "broadcast-add": (BroadcastAdd(), (1, 8, 8), "op 'add' (operator.add) combines 'a' (2, 4, 6, 6) with 'b' (2, 1, 6, 6)"),
    "own-tensor-added": (OwnBias(), (4,), "combines the output of 'a' with 'shift'"),
    "cat-along-batch": (CatBatch(), (4,), "concatenates along dim 0"),
    "untraceable": (DataDependent(), (4,), "if h.sum() > 0"),
    "groupnorm": (nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2)), (1, 8, 8), "layer '1' (GroupNorm)"),
    "layernorm": (nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2)), (4,), "layer '1' (LayerNorm)"),
    "embedding": (nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 4), nn.Linear(4, 2)), (3,), "layer '0' (Embedding)"),
    "grouped-conv": (nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2)), (2, 8, 8), "layer '0' (Conv2d) is a grouped convolution (groups=2)"),
    "softmax-between": (nn.Sequential(nn.Linear(4, 8), nn.Softmax(-1), nn.Linear(8, 2)), (4,), "layer '1' (Softmax) after layer '0'"),
    "not-channel-major": (SpatialFlatten(), (1, 8, 8), "op 'flatten' (.flatten()) after layer 'conv'"),
    "linear-on-conv": (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(6, 2)), (1, 8, 8), "layer '1' (Linear) reads the channels of layer '0'"),
    "single-linear": (nn.Linear(4, 2), (4,), "single Linear layer"),
    "single-in-sequential": (nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (4,), "('1', the classifier)"),
    "no-layer": (nn.Sequential(nn.ReLU()), (4,), "no Linear or Conv2d layer"),
    "functional-linear": (Functional(), (4,), "op 'linear' (torch.nn.functional.linear)"),
    "two-inputs": (TwoInputs(), (4,), "takes 2 inputs"),
    "wrong-input-shape": (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), (5,), "failed at layer '0' (Linear)"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refusals_are_one_line_naming_the_layer(case):
    module, shape, names = REFUSED[case]
    with pytest.raises(SparsenasError) as err:
        as_parent(module, shape)
    msg = str(err.value)
    assert msg.startswith("cannot discover node groups: ") and "\n" not in msg and names in msg, msg
    assert "node_groups()" in msg or "hidden layer" in msg or "input" in msg


def test_a_residual_stream_through_the_input_is_not_pruned():
    # x + b(relu(a(x))): b's units are tied to the input's features, which stay; a's units are a group
    groups = discover_node_groups(Residual(), (4,))
    assert [(g.name, g.size) for g in groups] == [("a", 4)]
    assert groups[0].consumers == (TensorSlice("b.weight", 1),)


def test_a_gate_ties_the_two_layers_it_multiplies():
    groups = discover_node_groups(Branch(), (4,))
    assert [(g.name, g.size) for g in groups] == [("a", 4), ("b", 4)]
    assert groups[0].consumers == (TensorSlice("b.weight", 1), TensorSlice("c.weight", 1))
    assert [s.tensor for s in groups[1].producers] == ["b.weight", "b.bias", "c.weight", "c.bias"]


# ---- data wrappers ------------------------------------------------------------------------------

def test_from_tensors_splits_and_counts_classes():
    import numpy as np

    x, y = np.random.default_rng(0).normal(size=(50, 6)), np.arange(50) % 4
    ds = from_tensors("t", x[:40], y[:40], x[40:], y[40:], n_val=8, per_feature=True)
    assert (ds.input_shape, ds.num_classes, len(ds.train), len(ds.val), len(ds.test)) == ((6,), 4, 32, 8, 10)
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    assert torch.allclose(ds.train.x.mean(0), torch.zeros(6), atol=1e-5)  # per-feature standardized
    assert from_tensors("t", x[:40], y[:40], x[40:], y[40:], num_classes=7).num_classes == 7


@pytest.mark.parametrize("bad, words", [
    (dict(y_train=torch.arange(40).float() / 3), "not whole numbers"),
    (dict(y_train=-torch.ones(40, dtype=torch.long)), "start at 0"),
    (dict(y_train=torch.zeros(39, dtype=torch.long)), "(40,)"),
    (dict(x_test=torch.zeros(10, 5)), "one sample shape"),
    (dict(num_classes=2), "num_classes=2 but a label is 3"),
    (dict(n_val=40), "n_val must be in [1, 39]"),
])
def test_from_tensors_refuses_bad_input(bad, words):
    args = dict(x_train=torch.randn(40, 6), y_train=torch.arange(40) % 4, x_test=torch.randn(10, 6), y_test=torch.arange(10) % 4)
    args.update(bad)
    with pytest.raises(SparsenasError) as err:
        from_tensors("bad", **args)
    assert words in str(err.value) and "'bad'" in str(err.value)


class Items(TorchDataset):
    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def test_from_torch_dataset_materializes_items():
    import numpy as np

    train = Items([(np.full((2, 3), i, dtype=np.float32), i % 3) for i in range(30)])
    test = TensorDataset(torch.randn(9, 2, 3), torch.arange(9) % 3)
    ds = from_torch_dataset("items", train, test, n_val=6)
    assert (ds.input_shape, ds.num_classes, len(ds.train), len(ds.val), len(ds.test)) == ((2, 3), 3, 24, 6, 9)
    assert sorted(torch.cat([ds.train.y, ds.val.y]).tolist()) == sorted(i % 3 for i in range(30))


@pytest.mark.parametrize("items, words", [
    ([torch.zeros(3)] * 4, "item 0 is a Tensor, not an (input, label) pair"),
    ([(torch.zeros(3), 0.5)] * 4, "item 0 has label 0.5"),
    ([(torch.zeros(3), 0), (torch.zeros(4), 1)], "item 1 has input shape (4,) but item 0 has (3,)"),
    ([("text", 0)] * 4, "item 0 has a str input"),
])
def test_from_torch_dataset_refuses_bad_items(items, words):
    with pytest.raises(SparsenasError) as err:
        from_torch_dataset("items", Items(items), Items(items))
    assert words in str(err.value) and "\n" not in str(err.value)


# ---- end to end ---------------------------------------------------------------------------------

@DATASETS.register("test-discover-blobs", help="test: 8x8 single-channel blobs, 3 classes, from torch tensors")
def blobs(data_dir: str | None = None):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(240) % 3
    x = torch.randn(240, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()  # class shifts the mean
    return from_tensors("test-discover-blobs", x[:200], y[:200], x[200:], y[200:], n_val=20)


def test_discovered_parent_trains_in_populations(tmp_path):
    spec = RunSpec(
        dataset="test-discover-blobs", model="test-discover-convnet", widths=(4, 8), limit=100,
        finders=("dense", "random", "random-search"), sparsities=(0.5,), seeds=(0,), candidates=2,
        train=TrainSpec(epochs=1, batch_size=32),
    ).validate()
    summary = run(spec, tmp_path)
    # random and random-search keep the same widths: they train together, as one population of two
    assert (summary.ran, summary.populations, summary.diverged) == (3, 2, 0)
    trials = Store(tmp_path).trials()
    assert {t.finder for t in trials} == {"dense", "random", "random-search"}
    assert {t.kept_nodes for t in trials if t.finder != "dense"} == {(2, 4)}


OWN_MODEL = Path(__file__).parent.parent / "examples" / "own_model.py"


def test_own_model_example_runs(tmp_path):
    # a subprocess: the example registers "wine" and "wine-mlp", which must not leak into this registry
    r = subprocess.run([sys.executable, str(OWN_MODEL), "--out", str(tmp_path), "--epochs", "2", "--seeds", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "node group 1: 16 nodes" in r.stdout and f"report: {tmp_path / 'report.md'}" in r.stdout
    trials = Store(tmp_path).trials()
    assert len(trials) == 1 + 2 * 2 and {t.finder for t in trials} == {"dense", "random", "random-search"}
