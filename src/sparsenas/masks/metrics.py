"""Size and cost of a sub-network: parameters, forward FLOPs per sample, weight sparsity."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..models.base import Parent
from ..runtime import eval_mode


def count_params(model: nn.Module) -> int:
    """Parameters (weights and biases) of a module.

    >>> from sparsenas.models import build_parent
    >>> count_params(build_parent("lenet-300-100", (1, 28, 28), 10, 0))
    266610
    """
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...], kept_weights: dict[str, int] | None = None) -> int:
    """Forward FLOPs per sample of Linear and Conv2d layers, a multiply-add counted as 2.

    Activations, pooling and bias additions are left out: they are a rounding error next to the
    matrix products. `kept_weights` ({weight name: nonzero count}) counts a weight-masked layer's
    multiply-adds as a sparse kernel would: only kept weights.

    Why not `torch.utils.flop_counter.FlopCounterMode`: on every net a run builds (shipped parents,
    compacted, discovered nn.Sequential) it gives these very numbers (tests/test_masks.py checks),
    but it is 2-14x slower per call, counts a masked layer as dense, and on a user's declared parent
    it also counts what this never did (F.linear, Conv1d, a Linear over a sequence: once here, per
    position there), which would put two conventions in one run's trials (docs/library_choices.md).

    >>> from sparsenas.models import build_parent
    >>> count_flops(build_parent("lenet-300-100", (1, 28, 28), 10, 0), (1, 28, 28))
    532400
    """
    total = 0

    kept = kept_weights or {}

    def hook_of(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            nonlocal total
            weight = m.weight
            assert isinstance(weight, torch.Tensor)  # hooked on Linear and Conv2d only
            nnz = kept.get(f"{name}.weight", weight.numel())
            if isinstance(m, nn.Linear):
                total += 2 * nnz
            elif isinstance(m, nn.Conv2d):
                total += 2 * nnz * out[0, 0].numel()  # every kept kernel weight, at every output position

        return hook

    handles = [m.register_forward_hook(hook_of(n)) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        device = next(model.parameters()).device
        with torch.no_grad(), eval_mode(model):  # a finder counts on the parent at θ0: leave its BatchNorm as it is
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
