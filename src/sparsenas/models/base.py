"""What a parent network must declare: its prunable node groups.

A *node* is one hidden unit of a Linear layer or one output channel of a Conv layer. A `NodeGroup`
says which tensors are indexed by the group's nodes: its *producers* (the rows of the weight and the
bias that compute the nodes, dim 0) and its *consumers* (the columns of the next layer that read them,
dim 1). A flatten between a conv and a linear layer makes each channel feed `block` consecutive
columns. With that declaration, masking and compaction work for any chain, without knowing the
architecture. The classifier layer's outputs are never a node group.

Models import nothing from training (nanoGPT's model.py): a model file is a constructor plus an
`nn.Module` that declares its node groups.

Initialization θ0 is drawn by `build_parent` from a `torch.Generator` seeded by the trial, never from
global state. By default that is `init_parameters` (PyTorch's own Linear/Conv init); a model whose
paper prescribes another (the CIFAR ResNets' and VGGs' Kaiming-normal convs and BatchNorm at 1 and 0)
defines a method `sparsenas_init(self, generator: torch.Generator) -> None`, which `build_parent`
calls instead, and draws every random number from `generator` (`kaiming_init` is that method's body
for conv + BatchNorm nets).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap


@dataclass(frozen=True)
class TensorSlice:
    """`tensor` (a parameter or buffer name) is indexed by the group's nodes along `dim`; node i owns
    indices [offset + i*block, offset + (i+1)*block). `offset` is where the group's entries start
    when other groups share the dim (a layer reading a channel concatenation).

    >>> TensorSlice("head.weight", 1, block=2, offset=2).rows(torch.arange(12.0).view(2, 6), 2).tolist()
    [[2.0, 8.0, 3.0, 9.0], [4.0, 10.0, 5.0, 11.0]]
    """

    tensor: str
    dim: int
    block: int = 1
    offset: int = 0

    def indices(self, nodes: torch.Tensor) -> torch.Tensor:
        """The indices along `dim` that the given node indices own."""
        return (self.offset + nodes[:, None] * self.block + torch.arange(self.block)[None, :]).reshape(-1)

    def rows(self, t: torch.Tensor, size: int) -> torch.Tensor:
        """`t`'s entries owned by each of the group's `size` nodes, as (size, -1): row i is node i's."""
        part = t.movedim(self.dim, 0).narrow(0, self.offset, size * self.block)
        return part.reshape(size, -1)  # node i's block of entries along dim is consecutive


@dataclass(frozen=True)
class NodeGroup:
    name: str
    size: int
    producers: tuple[TensorSlice, ...]
    consumers: tuple[TensorSlice, ...]


class Parent(nn.Module):
    """Base class of parent networks: an `nn.Module` that lists its prunable node groups."""

    def node_groups(self) -> list[NodeGroup]:
        raise NotImplementedError(f"{type(self).__name__} must declare its node groups")

    def prunable_weights(self) -> list[str]:
        """Names of the weight tensors of every Linear and Conv layer (the classifier included:
        its columns go when the last hidden nodes go). Biases are not counted as prunable."""
        return [f"{n}.weight" for n, m in self.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]

    def stacked_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, classes) of K networks shaped like this one, on one shared batch x (B, ...).

        `params[name]` stacks the K networks' tensors along a new dim 0. This default vmaps the
        module's own `forward` (torch.func), so any parent trains as a population; a parent may
        override it with a faster formulation, as `MLP` does. The module's own tensors are not read.

        >>> from sparsenas.models import build_parent
        >>> m = build_parent("lenet5", (1, 28, 28), 10, seed=0)
        >>> p = {n: t.detach().expand(2, *t.shape) for n, t in m.named_parameters()}
        >>> y = m.stacked_forward(p, torch.zeros(4, 1, 28, 28)); tuple(y.shape)
        (2, 4, 10)
        """
        return vmapped_forward(self)(params, x)

    def stacked_forward_each(self, params: dict[str, torch.Tensor], xs: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, classes) of K networks shaped like this one, each on its own batch: xs (K, B, ...).

        What a population of members with different data orders (trials of different seeds) runs.
        This default vmaps the module's own `forward` over the members and their batches; a parent
        that overrides `stacked_forward` may override this too (`MLP` does).

        >>> from sparsenas.models import build_parent
        >>> m = build_parent("lenet5", (1, 28, 28), 10, seed=0)
        >>> p = {n: t.detach().expand(2, *t.shape) for n, t in m.named_parameters()}
        >>> tuple(m.stacked_forward_each(p, torch.zeros(2, 4, 1, 28, 28)).shape)
        (2, 4, 10)
        """
        return vmapped_forward(self, each=True)(params, xs)


def vmapped_forward(module: nn.Module, each: bool = False) -> Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]:
    """`module`'s own forward vmapped over stacked tensors: (params (K, ...), x (B, ...)) -> (K, B, ...),
    or with `each`, every member on its own batch: (params (K, ...), xs (K, B, ...)) -> (K, B, ...).

    The one population forward for any module; `Parent.stacked_forward` uses it by default.

    >>> f = vmapped_forward(nn.Linear(4, 3))
    >>> tuple(f({"weight": torch.zeros(2, 3, 4), "bias": torch.ones(2, 3)}, torch.zeros(5, 4)).shape)
    (2, 5, 3)
    >>> tuple(vmapped_forward(nn.Linear(4, 3), each=True)({"weight": torch.zeros(2, 3, 4), "bias": torch.ones(2, 3)}, torch.zeros(2, 5, 4)).shape)
    (2, 5, 3)
    """

    def one(p: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
        return functional_call(module, p, (xb,))

    # randomness="different": dropout draws its own mask per member, as each would alone
    return vmap(one, in_dims=(0, 0 if each else None), randomness="different")


def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Linear/Conv initialization, drawn from `generator` rather than global state.

    Kaiming-uniform weights with a=sqrt(5) and uniform(+-1/sqrt(fan_in)) biases, exactly as
    `nn.Linear.reset_parameters`, so parents look like any PyTorch model at init.

    >>> a, b = nn.Linear(4, 2), nn.Linear(4, 2)
    >>> init_parameters(a, torch.Generator().manual_seed(0)); init_parameters(b, torch.Generator().manual_seed(0))
    >>> bool(torch.equal(a.weight, b.weight))
    True
    """
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)


def kaiming_init(model: nn.Module, generator: torch.Generator) -> None:
    """He et al.'s initialization for conv + BatchNorm nets, drawn from `generator`.

    Conv weights are Kaiming-normal with fan_out and ReLU gain (std sqrt(2 / (out_channels * k * k)),
    torchvision's ResNet/VGG choice; open_lth's fan_in default has the same gain), conv biases 0;
    BatchNorm scale 1, shift 0, running statistics reset; Linear layers keep PyTorch's default
    (`init_parameters`), as torchvision's ResNet does. Modules are visited in `modules()` order, so
    one seed gives one θ0.

    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    >>> kaiming_init(net, torch.Generator().manual_seed(0)); net[1].weight.tolist(), net[1].bias.tolist()
    ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            m.reset_running_stats()
            if m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            init_parameters(m, generator)


def linear_chain_groups(names: list[str], widths: list[int], consumer_blocks: list[int] | None = None) -> list[NodeGroup]:
    """Node groups of a chain of layers `names` whose hidden widths are `widths`.

    Layer i produces group i; layer i+1 consumes it. `names` has one more entry than `widths` (the
    classifier). `consumer_blocks[i]` is the flatten block size between layer i and i+1.

    >>> g = linear_chain_groups(["fc1", "out"], [300])
    >>> g[0].size, [s.tensor for s in g[0].producers], g[0].consumers[0].tensor
    (300, ['fc1.weight', 'fc1.bias'], 'out.weight')
    """
    blocks = consumer_blocks or [1] * len(widths)
    return [
        NodeGroup(
            name=names[i],
            size=w,
            producers=(TensorSlice(f"{names[i]}.weight", 0), TensorSlice(f"{names[i]}.bias", 0)),
            consumers=(TensorSlice(f"{names[i + 1]}.weight", 1, blocks[i]),),
        )
        for i, w in enumerate(widths)
    ]


def stacked_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """K linear layers at once: x (B, in) shared by all K, or (K, B, in); weight (K, out, in).

    A shared input is one GEMM against the K weight matrices laid side by side, (B, in) x (in, K*out),
    which runs near torch.mm's peak; per-member inputs use a batched GEMM. Returns (K, B, out).

    >>> x, w, b = torch.randn(5, 4), torch.randn(3, 2, 4), torch.randn(3, 2)
    >>> y = stacked_linear(x, w, b); tuple(y.shape)
    (3, 5, 2)
    >>> bool(torch.allclose(y[1], nn.functional.linear(x, w[1], b[1])))
    True
    """
    k, out, inp = weight.shape
    if x.dim() == 2:
        flat = weight.reshape(k * out, inp).t()
        y = torch.addmm(bias.reshape(-1), x, flat) if bias is not None else x @ flat
        return y.view(x.shape[0], k, out).transpose(0, 1)
    # Per-member inputs: computed as y^T = W x^T, (K, out, in) x (K, in, B), and returned as a view
    # (K, B, out). Autograd then forms each weight gradient dy^T x directly in the weight's own
    # (K, out, in) layout; written as x W^T it came out (K, in, out) and was copied into place, a
    # third of a LeNet step. The next layer's x^T is then contiguous, so the whole stack runs
    # features-by-batch without copies.
    xt = x.transpose(1, 2)
    yt = torch.bmm(weight, xt) if bias is None else torch.baddbmm(bias.unsqueeze(2), weight, xt)
    return yt.transpose(1, 2)


def is_stochastic(model: nn.Module, input_shape: tuple[int, ...]) -> bool:
    """Whether `model`'s training-mode forward draws from torch's global generator (dropout, as a
    module or functional): the generator's state moves during one forward. Asked of the generator, not
    of the outputs: light dropout on a small batch may drop nothing, and a forward that updates state
    without drawing (spectral norm's power iteration) changes its outputs. Run on a copy, so the
    model's BatchNorm statistics are left as they are.

    >>> is_stochastic(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), (1, 2, 2)), is_stochastic(nn.Sequential(nn.Flatten(), nn.Dropout(), nn.Linear(4, 3)), (1, 2, 2))
    (False, True)
    """
    net = copy.deepcopy(model).cpu().train()  # on the CPU: the generator watched below is the CPU's
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        before = torch.get_rng_state()
        net(x)
        return not torch.equal(before, torch.get_rng_state())
