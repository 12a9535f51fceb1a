"""The two numbers that turn a rate into GFLOP/s and a share of the machine: the useful training
FLOPs of a compacted sub-network (its Linear and Conv2d layers, any architecture), and torch.mm's
best on this device."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..runtime import eval_mode
from .methods import _now


def train_flops_per_sample(net: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Training FLOPs per sample of the Linear and Conv2d layers of `net`, fed samples of
    `input_shape`: forward, weight gradients, and input gradients of every layer whose input depends
    on a parameter (the layers reading the network's input, flattened or pooled, need none: backward
    computes none), 2 FLOPs per multiply-add each.

    A layer's multiply-adds are its output elements times the inputs each one reads (a Linear's
    in_features; a conv's in_channels/groups * kh * kw), counted on one zero sample run through the
    net in eval mode, so strides, padding and pooling are as the net computes them. BatchNorm,
    activations and pooling (a few FLOPs per activation) are not counted.

    >>> train_flops_per_sample(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), (4,))
    84.0
    >>> train_flops_per_sample(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)), (1, 4, 4))  # 4*72 + 6*16
    384.0
    """
    x = torch.zeros(2, *input_shape, dtype=next(net.parameters()).dtype, device=next(net.parameters()).device)
    macs: list[tuple[float, bool]] = []  # (multiply-adds per sample, input needs a gradient)

    def count(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        assert isinstance(m, (nn.Linear, nn.Conv2d))  # hooked on those only
        per_output = m.weight[0].numel()  # what one output element reads: (in,) or (in/groups, kh, kw)
        macs.append((out[0].numel() * per_output, inputs[0].requires_grad))

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        # eval mode: no BatchNorm statistics or dropout draws change; grad on: autograd's own answer
        # to "does this layer's input need a gradient"
        with eval_mode(net), torch.enable_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return float(sum(6 * n if needs_grad else 4 * n for n, needs_grad in macs))


def mm_peak_gflops(device: torch.device, sizes: Sequence[int] = (1024, 2048, 3072), seconds: float = 0.5) -> tuple[float, int]:
    """torch.mm's best GFLOP/s on square fp32 matrices of `sizes`, and the size that gave it.

    >>> gflops, n = mm_peak_gflops(torch.device("cpu"), sizes=(64,), seconds=0.01); gflops > 0, n
    (True, 64)
    """
    best = (0.0, 0)
    for n in sizes:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        a @ b  # warm-up
        reps, start = 0, _now(device)
        while True:
            a @ b
            reps += 1
            elapsed = _now(device) - start
            if elapsed >= seconds:
                break
        best = max(best, (2 * n**3 * reps / elapsed / 1e9, n))
    return best
