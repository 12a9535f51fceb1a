"""What a parent network must declare: its prunable node groups.

A *node* is one hidden unit of a Linear layer or one output channel of a Conv layer. A `NodeGroup`
says which tensors are indexed by the group's nodes: its *producers* (the rows of the weight and the
bias that compute the nodes, dim 0) and its *consumers* (the columns of the next layer that read them,
dim 1). A flatten between a conv and a linear layer makes each channel feed `block` consecutive
columns. With that declaration, masking and compaction work for any chain, without knowing the
architecture. The classifier layer's outputs are never a node group.

Models import nothing from training (nanoGPT's model.py): a model file is a constructor plus an
`nn.Module` that declares its node groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TensorSlice:
    """`tensor` (a parameter or buffer name) is indexed by the group's nodes along `dim`; node i owns
    indices [i*block, (i+1)*block)."""

    tensor: str
    dim: int
    block: int = 1


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
