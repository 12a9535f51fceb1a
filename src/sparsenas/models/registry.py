"""The model registry and `build_parent`, which builds a parent with its seeded initialization."""

from __future__ import annotations

import torch

from ..registry import Registry
from .base import Parent, init_parameters

# An entry is a constructor (input_shape, num_classes, widths or None) -> Parent.
MODELS: Registry = Registry("model")


def build_parent(
    name: str, input_shape: tuple[int, ...], num_classes: int, seed: int, widths: tuple[int, ...] | None = None
) -> Parent:
    """The parent `name` with initialization θ0 fixed by `seed`.

    >>> p = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0)
    >>> q = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0)
    >>> bool(torch.equal(p.fc1.weight, q.fc1.weight))
    True
    """
    model: Parent = MODELS.get(name)(input_shape, num_classes, widths)
    init_parameters(model, torch.Generator().manual_seed(seed))
    return model
