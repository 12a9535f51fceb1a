"""Where and how reproducibly to compute: device choice and seeded global generators.

One place every layer may use (the runner, the executors, export, a user's script). Randomness in
sparsenas is passed as a `torch.Generator` wherever the code draws itself; `seeded` exists for the
draws torch makes from its global generators (dropout), which must not depend on what else the
process ran before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .errors import SparsenasError


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda` (an error if no GPU is visible) or `auto` (cuda when available) as a device.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SparsenasError("--device cuda asked for, but this torch build sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`module` in eval mode inside the block, every submodule's own mode restored after it.

    For the probing forwards (shapes, FLOPs, activation sizes) on a live parent: in train mode a
    BatchNorm would move its running statistics (θ0 of every trial compacted from it) and refuse a
    batch of one on a 1x1 map, and dropout would draw from the global generator.

    >>> net = torch.nn.Sequential(torch.nn.BatchNorm1d(2)); net[0].eval() and None
    >>> with eval_mode(net): net.training
    False
    >>> net.training, net[0].training
    (True, False)
    """
    modes = [(m, m.training) for m in module.modules()]
    try:
        yield module.eval()
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global generators seeded with `seed` inside the block, restored after it.

    >>> with seeded(3, torch.device("cpu")): a = torch.rand(1)
    >>> with seeded(3, torch.device("cpu")): b = torch.rand(1)
    >>> bool(a == b)
    True
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
