"""The two numbers that turn a rate into GFLOP/s and a share of the machine: the useful training
FLOPs of a compacted sub-network, and torch.mm's best on this device."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .methods import _now


def train_flops_per_sample(net: nn.Module) -> float:
    """Training FLOPs per sample of a Linear chain: forward, weight gradients, input gradients of
    every layer but the first (2 FLOPs per multiply-add each).

    >>> train_flops_per_sample(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)))
    84.0
    """
    macs = [m.in_features * m.out_features for m in net.modules() if isinstance(m, nn.Linear)]
    return float(2 * sum(macs) + 2 * sum(macs) + 2 * sum(macs[1:]))


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
