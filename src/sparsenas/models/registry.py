"""The model registry and `build_parent`, which builds a parent with its seeded initialization."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SparsenasError
from ..registry import Registry
from .autoparent import as_parent
from .base import Parent, init_parameters

# An entry is a constructor (input_shape, num_classes, widths or None) -> Parent, or -> a plain
# nn.Module (a chain of Linear/Conv2d layers), whose node groups `build_parent` then discovers.
MODELS: Registry = Registry("model")


def build_parent(name: str, input_shape: tuple[int, ...], num_classes: int, seed: int, widths: tuple[int, ...] | None = None) -> Parent:
    """The parent `name` with initialization θ0 fixed by `seed`.

    A constructor that returns a plain `nn.Module` gets its node groups discovered (`as_parent`). A
    `Parent`'s hand-declared groups are checked against its tensors by the run that builds it
    (`masks.groups.check_node_groups`, which compacts it: the masks layer sits above this one).
    θ0 comes from the model's own `sparsenas_init(generator)` when it defines one (the CIFAR ResNets
    and VGGs: Kaiming-normal convs, BatchNorm at 1 and 0), else from `init_parameters` (PyTorch's
    default); either draws only from a generator seeded with `seed`.

    >>> p = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0)
    >>> q = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0)
    >>> bool(torch.equal(p.fc1.weight, q.fc1.weight))
    True
    """
    built = MODELS.get(name)(input_shape, num_classes, widths)
    if not isinstance(built, nn.Module):
        raise SparsenasError(f"model '{name}' constructor returned {type(built).__name__}, not an nn.Module; return the network")
    model = as_parent(built, input_shape)  # a Parent comes back unchanged
    initialize(model, torch.Generator().manual_seed(seed))
    return model


def initialize(model: nn.Module, generator: torch.Generator) -> None:
    """Draw `model`'s init from `generator`: its own `sparsenas_init(generator)` when it defines one,
    else PyTorch's default (`init_parameters`). A compacted sub-network initialized this way is
    initialized as itself (the fans of its own layers): the scratch starts do that.

    >>> p = build_parent("mlp", (1, 8, 8), 10, 0, (8,)); q = build_parent("mlp", (1, 8, 8), 10, 1, (8,))
    >>> initialize(q, torch.Generator().manual_seed(0)); bool(torch.equal(p.fc1.weight, q.fc1.weight))
    True
    """
    own_init = getattr(model, "sparsenas_init", None)
    if callable(own_init):
        own_init(generator)
    else:
        init_parameters(model, generator)
