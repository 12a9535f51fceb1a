"""The graph population forward (train/stacked_graph.py) equals vmap member by member, in float64:
logits, gradients and BatchNorm's running statistics, in train and eval mode; a graph it does not
know falls back to vmap."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsenas.masks import allocate, compact, random_mask
from sparsenas.models import build_parent
from sparsenas.models.base import vmapped_forward
from sparsenas.train import Population, TrainSpec
from sparsenas.train.stacked import stacked_forward_of
from sparsenas.train.stacked_graph import graph_stacked_forward


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny tensors: on a shared 2-core machine a second torch thread mostly waits for a busy core
    # (these tests took 29 s with two threads beside other processes, 2 s with one)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _stack(nets: list[nn.Module]) -> dict[str, torch.Tensor]:
    """Parameters (trainable) and buffers of `nets`, stacked (K, ...), as `Population` holds them."""
    tensors = [dict(n.named_parameters()) | dict(n.named_buffers()) for n in nets]
    trainable = {name for name, _ in nets[0].named_parameters()}
    return {k: torch.stack([t[k].detach() for t in tensors]).requires_grad_(k in trainable) for k in tensors[0]}


def _members(name: str, shape: tuple[int, ...], widths: tuple[int, ...] | None, k: int = 3) -> list[nn.Module]:
    parent = build_parent(name, shape, 10, seed=0, widths=widths).double()
    groups = parent.node_groups()
    gen = torch.Generator().manual_seed(1)
    return [compact(parent, random_mask(groups, allocate(groups, 0.5), gen)) for _ in range(k)]


def _assert_same_as_vmap(nets: list[nn.Module], x: torch.Tensor) -> None:
    """Graph and vmap from the same stacks: equal logits and gradients (train mode), equal running
    statistics after the step, equal logits in eval mode."""
    graph = graph_stacked_forward(nets[0])
    assert graph is not None
    ours, theirs = _stack(nets), _stack(nets)
    y = torch.randint(0, 10, (x.shape[0],), generator=torch.Generator().manual_seed(0))
    for mode in (True, False):
        nets[0].train(mode)
        a, b = graph(ours, x), vmapped_forward(nets[0])(theirs, x)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        if mode:
            for logits in (a, b):
                F.cross_entropy(logits.flatten(0, 1), y.repeat(len(nets))).backward()
            for name, t in ours.items():
                torch.testing.assert_close(t, theirs[name], rtol=0, atol=1e-12)  # BatchNorm updated both alike
                if t.grad is not None:
                    torch.testing.assert_close(t.grad, theirs[name].grad, rtol=0, atol=1e-12, msg=name)
    nets[0].train()


@pytest.mark.parametrize(
    "name,shape,widths",
    [("resnet20", (1, 12, 12), (4,)), ("vgg11-bn", (3, 16, 16), (4,)), ("lenet5", (1, 16, 16), None)],
)
def test_the_graph_path_equals_vmap_on_the_zoo(name, shape, widths):
    nets = _members(name, shape, widths)
    _assert_same_as_vmap(nets, torch.randn(6, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))


def test_depthwise_and_shared_input_branches_stack_per_member():
    # a depthwise conv (groups = channels) on the input itself, and the input added to a stacked tensor
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dw = nn.Conv2d(2, 2, 3, padding=1, groups=2)
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.bn = nn.BatchNorm2d(2)
            self.fc = nn.Linear(2 * 4 * 4, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.bn(self.conv(F.relu(self.dw(x)))) + x  # (B, 2, 4, 4): member's + shared
            return self.fc(F.max_pool2d(h, 2).flatten(1))

    torch.manual_seed(0)
    nets = [Net().double() for _ in range(3)]
    _assert_same_as_vmap(nets, torch.randn(5, 2, 8, 8, dtype=torch.float64))


def test_dropout_modules_draw_per_member_and_switch_off_in_eval():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 64), nn.Dropout(0.5), nn.Linear(64, 3))
    f = graph_stacked_forward(net)
    assert f is not None
    p = _stack([net, net])
    x = torch.ones(4, 1, 4, 4)
    y = f(p, x)
    assert not torch.equal(y[0], y[1])  # the same weights, different dropout draws
    net.eval()
    y = f(p, x)
    assert torch.equal(y[0], y[1]) and torch.allclose(y[0], net(x))


class _Cat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], 1)  # moves channels: member-major would break


class _FunctionalDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.dropout(x, 0.5, self.training))  # the trace fixes `training`


class _ModeBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * 2 if self.training else self.fc(x)


@pytest.mark.parametrize(
    "module", [_Cat(), _FunctionalDropout(), _ModeBranch(), nn.Linear(4, 3)], ids=["cat", "F.dropout", "mode-branch", "own-tensor"]
)
def test_a_graph_it_does_not_know_is_vmapped(module):
    assert graph_stacked_forward(module) is None
    assert module.training  # tracing in both modes restored the module's own
    p = _stack([module, module])
    x = torch.randn(5, 4)
    torch.manual_seed(0)  # the same dropout draws for both
    ours = stacked_forward_of(module)(p, x)
    torch.manual_seed(0)
    torch.testing.assert_close(ours, vmapped_forward(module)(p, x))


def test_an_input_shape_it_cannot_run_falls_back_to_vmap():
    # a Linear over a sequence (B, T, F): legal PyTorch, no member-major layout; found on meta tensors
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    f = graph_stacked_forward(net)
    assert f is not None
    p = _stack([net, net])
    x = torch.randn(5, 7, 4)
    torch.testing.assert_close(f(p, x), vmapped_forward(net)(p, x))
    torch.testing.assert_close(f(p, x[:, 0]), vmapped_forward(net)(p, x[:, 0]))  # 2-d: the graph path


def test_a_population_of_resnets_steps_like_vmap():
    nets = _members("resnet20", (1, 12, 12), (4,), k=2)
    x = torch.randn(8, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(0))
    ours, theirs = Population(nets, TrainSpec()), Population(nets, TrainSpec())
    theirs.forward = vmapped_forward(nets[0])
    for _ in range(2):
        torch.testing.assert_close(ours.step(x, y, 0.1), theirs.step(x, y, 0.1), rtol=0, atol=1e-12)
    for name, t in ours.params.items():
        torch.testing.assert_close(t, theirs.params[name], rtol=0, atol=1e-12, msg=name)
