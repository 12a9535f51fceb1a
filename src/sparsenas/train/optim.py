"""SGD and Adam over a population's stacked tensors: torch's own fused kernels, called directly.

Why not `torch.optim`: every `torch.optim.Optimizer` imports `torch._dynamo` on its first call
(1.5 s on this project's 2-core machine, a third of a short run end to end) and passes each
`step()` through dynamo's graph-break guards and profiler hooks. The engine needs none of that: its
optimizer is one learning rate over a flat list of tensors. These classes call the same kernels
(`torch._fused_sgd_`, `torch._fused_adam_`) with the same arguments and the same state as
`torch.optim.SGD(..., fused=True)` and `torch.optim.Adam(..., fused=True)`, so every number is
bit-for-bit the one torch's optimizer gives (tests/test_optim.py holds them side by side).

Devices without fused kernels (anything but CPU and CUDA) get `torch.optim` itself.

>>> w = torch.ones(2, 3, requires_grad=True)
>>> opt = FusedSGD([w], lr=0.1, momentum=0.9)
>>> w.sum().backward(); opt.step(); round(w[0, 0].item(), 6)
0.9
"""

from __future__ import annotations

from typing import Any

import torch


def _groups(params: list[torch.Tensor]) -> list[list[int]]:
    """Indices of `params` grouped by (device, dtype), groups in order of first appearance.

    >>> _groups([torch.zeros(1), torch.zeros(1, dtype=torch.float64), torch.zeros(2)])
    [[0, 2], [1]]
    """
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault((p.device, p.dtype), []).append(i)
    return list(groups.values())


class _Fused:
    """What both fused optimizers share: the tensors, one learning rate, weight decay, per-tensor state."""

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float) -> None:
        self.params = list(params)
        self.lr = lr
        self.weight_decay = weight_decay
        self.state: dict[torch.Tensor, dict[str, Any]] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _stepping(self) -> list[torch.Tensor]:
        # like torch.optim: a tensor without a gradient takes no step and keeps no state
        return [p for p in self.params if p.grad is not None]


class FusedSGD(_Fused):
    """SGD with momentum (torch's semantics: dampening 0, no Nesterov, first buffer = first gradient).

    `state[p]` holds `momentum_buffer` once `p` has taken a step, as in `torch.optim.SGD`.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = momentum

    @torch.no_grad()
    def step(self) -> None:
        params = self._stepping()
        if not params:
            return
        grads: list[torch.Tensor] = [p.grad for p in params if p.grad is not None]
        buffers: list[torch.Tensor] = []
        if self.momentum != 0:
            first = all("momentum_buffer" not in self.state.get(p, {}) for p in params)
            for p, g in zip(params, grads):
                st = self.state.setdefault(p, {})
                if "momentum_buffer" not in st:
                    # the first step's kernel copies the gradient in; a tensor joining later starts
                    # from zero, which gives the same buffer (0 * momentum + gradient)
                    st["momentum_buffer"] = torch.empty_like(g) if first else torch.zeros_like(g)
                buffers.append(st["momentum_buffer"])
        else:
            first = False
        # one kernel call per (device, dtype), as torch groups them (CUDA's kernel takes one of each)
        for group in _groups(params):
            torch._fused_sgd_(
                [params[i] for i in group],
                [grads[i] for i in group],
                [buffers[i] for i in group] if buffers else [],
                weight_decay=self.weight_decay,
                momentum=self.momentum,
                lr=self.lr,
                dampening=0.0,
                nesterov=False,
                maximize=False,
                is_first_step=first,
            )


class FusedAdam(_Fused):
    """Adam (betas 0.9/0.999, eps 1e-8, L2 weight decay added to the gradient, as `torch.optim.Adam`).

    `state[p]` holds `step` (a float32 scalar tensor), `exp_avg` and `exp_avg_sq`, as torch's does.
    """

    def __init__(
        self, params: list[torch.Tensor], lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        super().__init__(params, lr, weight_decay)
        self.betas = betas
        self.eps = eps

    @torch.no_grad()
    def step(self) -> None:
        params = self._stepping()
        if not params:
            return
        for p in params:
            if p not in self.state:
                self.state[p] = {
                    # float32 on the parameter's device: the dtype torch's fused Adam keeps its step in
                    "step": torch.zeros((), dtype=torch.float32, device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
        states = [self.state[p] for p in params]
        steps = [s["step"] for s in states]
        for group in _groups(params):
            group_steps = [steps[i] for i in group]
            torch._foreach_add_(group_steps, 1)
            torch._fused_adam_(
                [params[i] for i in group],
                [params[i].grad for i in group],  # type: ignore[misc]
                [states[i]["exp_avg"] for i in group],
                [states[i]["exp_avg_sq"] for i in group],
                [],
                group_steps,
                amsgrad=False,
                lr=self.lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=self.weight_decay,
                eps=self.eps,
                maximize=False,
            )


class TorchOptimizer:
    """`torch.optim`'s SGD or Adam behind the same face, for devices without fused kernels."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.inner = optimizer
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.state = optimizer.state

    @property
    def lr(self) -> float:
        return float(self.inner.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.inner.param_groups:
            group["lr"] = value

    def zero_grad(self) -> None:
        self.inner.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.inner.step()


StackedOptimizer = FusedSGD | FusedAdam | TorchOptimizer
