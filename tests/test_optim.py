"""The engine's optimizers (train/optim.py) against torch.optim's fused SGD and Adam: bit for bit."""

from __future__ import annotations

import pytest
import torch

from sparsenas.train.optim import FusedAdam, FusedSGD, TorchOptimizer
from sparsenas.train.spec import TrainSpec
from sparsenas.train.stacked import make_stacked_optimizer


def _pair(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(4, 7, 5), (4, 5), (4, 3, 3, 2, 2)]
    a = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
    b = [t.detach().clone().requires_grad_() for t in a]
    return a, b


def _run(opt_a, opt_b, a: list[torch.Tensor], b: list[torch.Tensor], steps: int = 6, skip: int | None = None) -> None:
    """Same losses through both; lr changes every step (as a schedule does); `skip`: a tensor
    that gets no gradient on the first two steps."""
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        targets = [torch.randn(t.shape, generator=g) for t in a]
        lr = 0.05 * (1 + step) / steps
        for ts, opt in ((a, opt_a), (b, opt_b)):
            if isinstance(opt, torch.optim.Optimizer):
                for group in opt.param_groups:
                    group["lr"] = lr
                opt.zero_grad(set_to_none=True)
            else:
                opt.lr = lr
                opt.zero_grad()
            used = [i for i in range(len(ts)) if not (skip == i and step < 2)]
            sum(((ts[i] * targets[i]).sin().square().sum() for i in used), torch.zeros(())).backward()
            opt.step()
        for x, y in zip(a, b):
            assert torch.equal(x, y), f"step {step}: the engine's optimizer left torch.optim's numbers"


@pytest.mark.parametrize("momentum,wd", [(0.9, 0.0), (0.9, 5e-4), (0.0, 0.0), (0.0, 1e-3)])
def test_sgd_equals_torch_fused_sgd(momentum: float, wd: float) -> None:
    a, b = _pair()
    ours = FusedSGD(a, lr=0.1, momentum=momentum, weight_decay=wd)
    torchs = torch.optim.SGD(b, lr=0.1, momentum=momentum, weight_decay=wd, fused=True)
    _run(ours, torchs, a, b)
    if momentum:
        for x, y in zip(a, b):
            assert torch.equal(ours.state[x]["momentum_buffer"], torchs.state[y]["momentum_buffer"])


@pytest.mark.parametrize("wd", [0.0, 1e-4])
def test_adam_equals_torch_fused_adam(wd: float) -> None:
    a, b = _pair(3)
    ours = FusedAdam(a, lr=1e-3, weight_decay=wd)
    torchs = torch.optim.Adam(b, lr=1e-3, weight_decay=wd, fused=True)
    _run(ours, torchs, a, b, steps=8)
    for x, y in zip(a, b):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(ours.state[x][key], torchs.state[y][key]), key


def test_a_tensor_without_gradient_takes_no_step() -> None:
    """torch.optim skips a tensor whose .grad is None and keeps no state for it; so do ours, and a
    tensor that joins later follows torch's trajectory too."""
    for make_ours, make_torch in (
        (lambda p: FusedSGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, fused=True)),
        (lambda p: FusedAdam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2, fused=True)),
    ):
        a, b = _pair(5)
        before = a[1].detach().clone()
        ours = make_ours(a)
        _run(ours, make_torch(b), a, b, steps=2, skip=1)
        assert torch.equal(a[1], before) and a[1] not in ours.state
    # a tensor that joins later: torch's fused Adam takes it, and ours matches it bit for bit
    a, b = _pair(5)
    _run(FusedAdam(a, lr=1e-2), torch.optim.Adam(b, lr=1e-2, fused=True), a, b, steps=5, skip=1)
    # torch's fused SGD refuses it (a None buffer beside others); its plain SGD starts the buffer at
    # the gradient, as ours does (same arithmetic, other kernels: equal to rounding)
    a, b = _pair(5)
    ours_sgd = FusedSGD(a, lr=0.1, momentum=0.9)
    plain = torch.optim.SGD(b, lr=0.1, momentum=0.9, foreach=False)
    g = torch.Generator().manual_seed(2)
    for step in range(4):
        targets = [torch.randn(t.shape, generator=g) for t in a]
        for ts, opt in ((a, ours_sgd), (b, plain)):
            opt.zero_grad()
            used = [0, 2] if step < 2 else [0, 1, 2]
            sum(((ts[i] * targets[i]).sin().square().sum() for i in used), torch.zeros(())).backward()
            opt.step()
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


def test_make_stacked_optimizer_picks_by_name_and_device() -> None:
    p = [torch.zeros(2, 3, requires_grad=True)]
    assert isinstance(make_stacked_optimizer(p, TrainSpec(optimizer="sgd")), FusedSGD)
    assert isinstance(make_stacked_optimizer(p, TrainSpec(optimizer="adam")), FusedAdam)
    assert isinstance(make_stacked_optimizer([], TrainSpec()), FusedSGD)  # nothing to train: a no-op, not torch's refusal
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_stacked_optimizer(p, TrainSpec(optimizer="lamb"))


def test_torch_optimizer_wrapper_sets_lr_and_steps() -> None:
    """The fallback for devices without fused kernels: torch.optim behind the engine's face."""
    a, b = _pair(7)
    wrapped = TorchOptimizer(torch.optim.SGD(a, lr=0.1, momentum=0.9))
    wrapped.lr = 0.02
    assert wrapped.lr == pytest.approx(0.02)
    _run(wrapped, torch.optim.SGD(b, lr=0.1, momentum=0.9), a, b, steps=3)


def test_no_dynamo_import_for_training() -> None:
    """The reason this module exists: a training step must not import torch._dynamo (1.5 s)."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from sparsenas.train.optim import FusedSGD\n"
        "w = torch.ones(3, requires_grad=True); o = FusedSGD([w], lr=0.1, momentum=0.9)\n"
        "w.sum().backward(); o.step(); o.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_mixed_dtypes_step_per_group_as_torch_does() -> None:
    """A float64 tensor beside float32 ones: one kernel call per (device, dtype), as torch groups them."""
    for make_ours, make_torch in (
        (
            lambda p: FusedSGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4, fused=True),
        ),
        (lambda p: FusedAdam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2, fused=True)),
    ):
        a, b = _pair(9)
        a[1] = a[1].detach().double().requires_grad_()
        b[1] = b[1].detach().double().requires_grad_()
        _run(make_ours(a), make_torch(b), a, b, steps=4)
