"""Each member's loss in a population: cross-entropy over logits (K, B, C), laid out for speed
where that gives the very same bits.

On the CPU a log-softmax over a last dimension of 10 classes runs row by row (about 0.1 us a row);
over the middle dimension of (K, C, B) it runs vectorized along the batch, 3x faster at K=32. The
two give the same bits only in some cases (fewer classes than the vector width, the batch padded to
whole vectors, the gradient handed on in the same layout), so a probe asks this CPU's kernels once
per (classes, dtype), and the fast layout is taken only where it passed: no stored trial's numbers
depend on which layout ran.
"""

from __future__ import annotations

import functools

import torch
from torch.nn import functional as F


def member_losses(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of each member: logits (K, B, C), labels (B,) shared or (K, B) each member's
    own -> (K,) (mean or sum over B). Over (K, C, B) where `_classes_middle_exact` allows it (a K=32
    step's loss and gradient: 0.9 ms over the rows, 0.35 ms so), over the K*B rows elsewhere.

    >>> [round(v, 4) for v in member_losses(torch.zeros(2, 3, 4), torch.tensor([0, 1, 2])).tolist()]
    [1.3863, 1.3863]
    """
    k, b, c = logits.shape
    # below ~500 rows the padding copy costs what the vectorized kernel saves (both give the same bits)
    if logits.device.type == "cpu" and k * b >= 512 and _classes_middle_exact(c, logits.dtype):
        per_sample = _cross_entropy_middle(logits, y if y.dim() == 2 else y.expand(k, b))
    else:
        labels = y.reshape(k * b) if y.dim() == 2 else y.repeat(k)
        per_sample = F.cross_entropy(logits.reshape(k * b, c), labels, reduction="none").view(k, b)
    return per_sample.mean(1) if reduction == "mean" else per_sample.sum(1)


PAD = 64  # batch columns padded to whole multiples: no column falls to the kernel's scalar tail


def _cross_entropy_middle(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy (K, B) of logits (K, B, C), labels (K, B), taken over (K, C, B')
    with the batch padded to a multiple of PAD (the padded columns' losses are dropped)."""
    k, b, c = logits.shape
    pad = -b % PAD
    # Through the (K*B, C) rows first, as the rows' formulation: the gradient then reaches the
    # network laid out as it always did. The values alone are not enough: a network's last GEMM
    # rounds its weight gradient by the layout of the gradient it is given.
    # With K = 1 the view below maps back without a copy and the gradient would stay strided:
    # the hook makes it the contiguous (K*B, C) the rows' formulation hands on, for every K.
    rows = logits.reshape(k * b, c)
    if rows.requires_grad:
        rows.register_hook(torch.Tensor.contiguous)
    middle = F.pad(rows.view(k, b, c).transpose(1, 2), (0, pad)).contiguous()  # (K, C, B')
    return F.cross_entropy(middle, F.pad(labels, (0, pad)), reduction="none")[:, :b]


@functools.cache
def _classes_middle_exact(c: int, dtype: torch.dtype) -> bool:
    """Whether `_cross_entropy_middle` gives bit for bit the loss and the gradient of one
    cross-entropy over the K*B rows on this CPU, for `c` classes of `dtype`, the gradient in the
    same memory layout too (the network's GEMMs round by it): asked of the kernels once per
    (c, dtype), on batches of several lengths, one member or several, logits laid out (K, B, C) or
    as a transposed view, from 0.01 to 100 (a kernel that sums or rounds another way differs on
    most rows). On AVX-512, float32 agrees below 16 classes and float64 below 8; beyond, the rows'
    kernel sums in vectors and the bits differ.

    >>> _classes_middle_exact(10, torch.float32) in (True, False)
    True
    """
    if c < 2 or not dtype.is_floating_point:
        return False
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode(False), torch.enable_grad():
        for k, b, transposed in ((8, 16, False), (8, 50, True), (4, 272, False), (2, 1000, True), (1, 600, False), (1, 512, True)):
            scale = torch.logspace(-2, 2, k * b, dtype=dtype).view(k, b, 1)
            values = torch.randn(k, b, c, generator=g, dtype=dtype) * scale
            # a stacked MLP's logits are a transposed view of (K, C, B): the gradient's layout then differs
            leaf = (values.transpose(1, 2).contiguous() if transposed else values).requires_grad_()
            logits = leaf.transpose(1, 2) if transposed else leaf
            labels = torch.randint(0, c, (k, b), generator=g)
            upstream = torch.rand(k, b, generator=g, dtype=dtype)  # an uneven gradient into the loss
            rows = F.cross_entropy(logits.reshape(k * b, c), labels.reshape(-1), reduction="none").view(k, b)
            middle = _cross_entropy_middle(logits, labels)
            # scalars weighted by `upstream`, not grad_outputs: those make torch import sympy (0.4 s)
            (g_rows,) = torch.autograd.grad((rows * upstream).sum(), leaf)
            (g_middle,) = torch.autograd.grad((middle * upstream).sum(), leaf)
            if not (torch.equal(rows, middle) and torch.equal(g_rows, g_middle) and g_rows.stride() == g_middle.stride()):
                return False
    return True
