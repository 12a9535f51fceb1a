"""Size and cost of a sub-network: parameters, forward FLOPs per sample, weight sparsity."""

from __future__ import annotations

import torch
from torch import nn

from ..models.base import Parent


def count_params(model: nn.Module) -> int:
    """Parameters (weights and biases) of a module.

    >>> from sparsenas.models import build_parent
    >>> count_params(build_parent("lenet-300-100", (1, 28, 28), 10, 0))
    266610
    """
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs per sample of Linear and Conv2d layers, a multiply-add counted as 2.

    Activations, pooling and bias additions are left out: they are a rounding error next to the
    matrix products and every tool counts them differently.

    >>> from sparsenas.models import build_parent
    >>> count_flops(build_parent("lenet-300-100", (1, 28, 28), 10, 0), (1, 28, 28))
    532400
    """
    total = 0

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Linear):
            total += 2 * m.in_features * m.out_features
        elif isinstance(m, nn.Conv2d):
            per_output = (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
            total += 2 * out[0].numel() * per_output

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return total


def prunable_weight_count(model: Parent) -> int:
    """Weights of every Linear/Conv layer (biases excluded), the denominator of weight sparsity.

    >>> from sparsenas.models import build_parent
    >>> prunable_weight_count(build_parent("lenet-300-100", (1, 28, 28), 10, 0))
    266200
    """
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in model.prunable_weights())


def weight_sparsity(parent: Parent, sub: Parent) -> float:
    """Fraction of `parent`'s prunable weights absent from the compacted sub-network `sub`.

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 8, 8), 10, 0, (8, 4)); weight_sparsity(p, p)
    0.0
    """
    return 1.0 - prunable_weight_count(sub) / prunable_weight_count(parent)
