"""Hand-declared node groups are checked when the parent is built: a tensor left out of a group is a
one-line error naming it, not torch's `running_mean should contain 8 elements not 16` mid-run."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sparsenas.errors import SparsenasError
from sparsenas.models import MODELS, NodeGroup, Parent, TensorSlice, build_parent
from sparsenas.masks.groups import check_node_groups
from sparsenas.protocol import run
from sparsenas.store import Store

from helpers import shipped, tiny_spec

STATS = ("bn1.running_mean", "bn1.running_var")


class ConvBN(Parent):
    """conv3x3 -> BatchNorm -> ReLU -> dropout -> global average pool -> fc -> classifier.

    `declare` names the conv1 group's producers beyond the conv's own weight and bias, so a test can
    leave some out; `fc_consumer=False` leaves fc1's columns out of the group instead.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, declare: tuple[str, ...], fc_consumer: bool = True,
                 size: int | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.drop = nn.Dropout(0.5)  # draws from the global RNG in train mode: the check must not shift it
        self.fc1 = nn.Linear(16, 16)  # as wide as conv1: its rows must not be taken for conv1's columns
        self.out = nn.Linear(16, num_classes)
        self.declare, self.fc_consumer, self.size = declare, fc_consumer, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.bn1(self.conv1(x))))  # (B, 16, H, W)
        x = torch.relu(self.fc1(x.mean((2, 3))))  # (B, 16)
        return self.out(x)

    def node_groups(self) -> list[NodeGroup]:
        # the sizes are read off the tensors, so a compacted copy describes its own groups
        c, f = self.conv1.weight.shape[0], self.fc1.weight.shape[0]
        conv = tuple(TensorSlice(n, 0) for n in ("conv1.weight", "conv1.bias", *self.declare))
        return [
            NodeGroup("conv1", self.size or c, conv, (TensorSlice("fc1.weight", 1),) if self.fc_consumer else ()),
            NodeGroup("fc1", f, (TensorSlice("fc1.weight", 0), TensorSlice("fc1.bias", 0)), (TensorSlice("out.weight", 1),)),
        ]


@MODELS.register("test-groups-bn", help="test: conv + BatchNorm whose group lists the running statistics")
def _good(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> ConvBN:
    return ConvBN(input_shape, num_classes, ("bn1.weight", "bn1.bias", *STATS))


@MODELS.register("test-groups-bn-no-stats", help="test: conv + BatchNorm whose group forgets the running statistics")
def _no_stats(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> ConvBN:
    return ConvBN(input_shape, num_classes, ("bn1.weight", "bn1.bias"))


def test_running_stats_left_out_of_a_group_is_one_line_before_training(tmp_path, capsys):
    from sparsenas.cli import main

    # the reproducer: a run of the parent, which used to end in torch's "running_mean should contain 8 elements not 16"
    args = ["run", "--model", "test-groups-bn-no-stats", "--limit", "100", "--epochs", "1", "--seeds", "1",
            "--sparsities", "0.5", "--finders", "dense,random", "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add TensorSlice('bn1.running_mean', 0)" in err
    assert not (tmp_path / "r" / "report.html").exists()
    with pytest.raises(SparsenasError) as e:
        check_node_groups(build_parent("test-groups-bn-no-stats", (1, 8, 8), 10, seed=0), (1, 8, 8), "test-groups-bn-no-stats")
    assert str(e.value) == (
        "group 'conv1' of model 'test-groups-bn-no-stats' slices conv1.weight, conv1.bias, bn1.weight, bn1.bias, fc1.weight "
        "but not bn1.running_mean, bn1.running_var (16 entries along dim 0); "
        "add TensorSlice('bn1.running_mean', 0) and the like to the group's producers"
    )


@pytest.mark.parametrize("kwargs, message", [
    (dict(declare=STATS), r"slices conv1\.weight, conv1\.bias, bn1\.running_mean, bn1\.running_var, fc1\.weight but not bn1\.weight, bn1\.bias \(16 entries along dim 0\)"),
    (dict(declare=("bn1.weight", "bn1.bias", *STATS), fc_consumer=False), r"but not fc1\.weight \(16 entries along dim 1\); add TensorSlice\('fc1\.weight', 1\) to the group's consumers$"),
    (dict(declare=("bn1.runing_mean",)), r"group 'conv1' of model 'toy' names bn1\.runing_mean, which the model does not have"),
    (dict(declare=(), size=15), r"slices conv1\.weight \(16, 1, 3, 3\) along dim 0 in 15 blocks of 1; that dim must have 15 entries"),
])
def test_other_declaration_mistakes_are_named(kwargs, message):
    with pytest.raises(SparsenasError, match=message) as e:
        check_node_groups(ConvBN((1, 8, 8), 10, **kwargs), (1, 8, 8), "toy")
    assert "\n" not in str(e.value)


def test_the_check_leaves_the_parent_and_the_global_rng_alone():
    parent = ConvBN((1, 8, 8), 10, ("bn1.weight", "bn1.bias", *STATS))
    before = {k: v.clone() for k, v in parent.state_dict().items()}
    rng = torch.get_rng_state()
    check_node_groups(parent, (1, 8, 8), "toy")
    assert torch.equal(torch.get_rng_state(), rng)  # train-mode dropout in the check drew from a fork
    assert parent.training and all(torch.equal(v, before[k]) for k, v in parent.state_dict().items())


@pytest.mark.parametrize("name", shipped(MODELS))
def test_every_shipped_model_passes_the_check_and_a_tensor_left_out_is_named(name):
    shape = (1, 28, 28)
    parent = build_parent(name, shape, 10, seed=0)  # builds: its own declaration passes
    first, *rest = parent.node_groups()
    left_out = first.producers[1]  # the bias, or the BatchNorm's scale where a BatchNorm follows a bias-free conv
    assert left_out.tensor.endswith((".bias", ".weight"))
    broken = [NodeGroup(first.name, first.size, (first.producers[0], *first.producers[2:]), first.consumers), *rest]
    parent.node_groups = lambda: broken  # as if its author had forgotten that tensor
    with pytest.raises(
        SparsenasError, match=rf"^group '{first.name}' of model '{name}' slices .* but not {left_out.tensor} \({first.size} entries along dim 0\)"
    ):
        check_node_groups(parent, shape, name)


def test_the_correct_declaration_builds_and_trains(tmp_path):
    parent = build_parent("test-groups-bn", (1, 8, 8), 10, seed=0)
    assert [(g.name, g.size) for g in parent.node_groups()] == [("conv1", 16), ("fc1", 16)]
    run(tiny_spec(model="test-groups-bn", widths=None, seeds=(0,), epochs=2), tmp_path)
    trials = Store(tmp_path).trials()
    assert trials and all(t.status == "done" and math.isfinite(t.final_test_acc) for t in trials)
