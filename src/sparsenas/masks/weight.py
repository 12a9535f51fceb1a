"""Weight masks: which individual weights of each prunable layer a sub-network keeps.

A weight-masked sub-network cannot be compacted to a smaller dense net, so it is trained at the
parent's size with its masked weights held at zero (`train` multiplies them out after every step).
Sparsity here is the fraction of the parent's prunable weights (every Linear/Conv weight, the
classifier included; biases excluded) that the mask removes.

Allocation turns a target sparsity into kept counts: `per-layer` keeps (1-s) of every layer (at
least one weight each, so no layer can be emptied), `global` ranks all weights together and keeps the
top (1-s) of the whole network, so a finder's scores decide how much of each layer survives, and a
layer may collapse (empty, or cut off from input or output). `connected` detects that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import SparsenasError
from ..models.base import Parent

ALLOCATIONS = ("per-layer", "global")
TOPK_RULES = ("round", "floor")  # how `global_count` turns a sparsity into a kept count


@dataclass(frozen=True, eq=False)
class WeightMask:
    """Kept weights per prunable layer: {weight name: bool tensor of the weight's shape}.

    >>> m = WeightMask({"fc1.weight": torch.tensor([[True, False], [False, False]])})
    >>> m.kept_counts(), m.sparsity()
    ((1,), 0.75)
    """

    tensors: dict[str, torch.Tensor]

    def kept_counts(self) -> tuple[int, ...]:
        return tuple(int(t.sum()) for t in self.tensors.values())

    def sizes(self) -> tuple[int, ...]:
        return tuple(t.numel() for t in self.tensors.values())

    def sparsity(self) -> float:
        """Fraction of the masked weights removed."""
        return 1.0 - sum(self.kept_counts()) / sum(self.sizes())

    def float_masks(self) -> dict[str, torch.Tensor]:
        """0/1 float masks, for multiplying into weights."""
        return {n: t.float() for n, t in self.tensors.items()}

    def validate(self, parent: Parent) -> None:
        """Raise ValueError unless the mask covers exactly `parent`'s prunable weights, shape for shape."""
        params = dict(parent.named_parameters())
        names = parent.prunable_weights()
        if list(self.tensors) != names:
            raise ValueError(f"weight mask covers {list(self.tensors)}, parent's prunable weights are {names}")
        for n in names:
            if tuple(self.tensors[n].shape) != tuple(params[n].shape):
                raise ValueError(f"weight mask of '{n}' has shape {tuple(self.tensors[n].shape)}, weight has {tuple(params[n].shape)}")


def layer_counts(sizes: tuple[int, ...], sparsity: float) -> tuple[int, ...]:
    """Per-layer allocation: each layer keeps round((1-s)*size) weights, at least one (half rounds up).

    >>> layer_counts((235200, 30000, 1000), 0.99)
    (2352, 300, 10)
    """
    return tuple(max(1, math.floor(round((1.0 - sparsity) * n, 9) + 0.5)) for n in sizes)


def global_count(sizes: tuple[int, ...], sparsity: float, topk: str = "round") -> int:
    """Global allocation: the number of weights kept over the whole network (at least one).

    `round` keeps round((1-s)*N), half up, like every per-layer count. `floor` prunes int(s*N) and
    keeps the rest, the count of Tanaka et al.'s code (Synaptic-Flow `Pruner._global_mask`, which
    also runs their SNIP, GraSP and magnitude baselines; GraSP's own code counts alike): it keeps
    ceil((1-s)*N), one more than `round` whenever the fraction of (1-s)*N is below a half.

    >>> global_count((235200, 30000, 1000), 0.99)
    2662
    >>> global_count((10,), 0.36), global_count((10,), 0.36, "floor")  # (1-s)*N = 6.4
    (6, 7)
    """
    n = sum(sizes)
    if topk == "floor":
        # the authors' float expression as is (no rounding of float noise), so that SynFlow's 100
        # rounds keep exactly their counts: a one-weight difference per round compounds
        return max(1, n - int(sparsity * n))
    if topk != "round":
        raise ValueError(f"unknown top-k rule {topk!r}; choose one of {', '.join(TOPK_RULES)}")
    return max(1, math.floor(round((1.0 - sparsity) * n, 9) + 0.5))


def _erk_quotas(shapes: Sequence[tuple[int, ...]], total: int) -> list[float]:
    """ERK's real-valued kept count per layer, summing to `total`: layer l keeps eps * (sum of its
    dims) weights (its density eps * sum/prod times its size), every layer that would keep more than
    its size is made dense, and eps is solved again over the others (Evci et al. 2020, RigL)."""
    sizes = [math.prod(s) for s in shapes]
    dense: set[int] = set()
    while True:
        rest = [i for i in range(len(shapes)) if i not in dense]
        if not rest:  # every layer dense: only a total of all weights gets here
            return [float(n) for n in sizes]
        # raw density times size is just the sum of the dims: eps * sum(rest's dim sums) fills what
        # the dense layers leave of the total
        eps = (total - sum(sizes[i] for i in dense)) / sum(sum(shapes[i]) for i in rest)
        over = {i for i in rest if eps * sum(shapes[i]) > sizes[i]}
        if not over:
            return [float(sizes[i]) if i in dense else eps * sum(shapes[i]) for i in range(len(shapes))]
        # RigL densifies only the layers of the highest raw density per pass; all that are over at
        # once ends the same: densifying an over-full layer only raises eps, so none comes back under
        dense |= over


def erk_counts(shapes: Sequence[tuple[int, ...]], sparsity: float) -> tuple[int, ...]:
    """Erdos-Renyi-Kernel allocation (Evci et al. 2020, RigL): weights kept per prunable tensor.

    `shapes` are the prunable weights' shapes in layer order, (out, in) or (out, in, kh, kw). Layer
    l's density is eps * (sum of its dims) / (product of its dims): Erdos-Renyi's (n_in + n_out) /
    (n_in * n_out) for a Linear, with the kernel's kh + kw and kh * kw for a conv, so small layers
    keep more of their weights and wide ones less. eps is set so that the total kept is exactly
    `global_count(sizes, sparsity)`, round((1-s)*N), so an ERK mask and a uniform one compare at
    equal weight counts (the `random` control rounds layer by layer, `layer_counts`, whose sum can
    differ by a few weights where layers are small). A layer whose density would exceed 1 is dense,
    and eps is solved again over the others. Real-valued counts become integers by largest remainder
    (ties: the earlier layer), each at least one (no layer emptied) and at most the layer's size; a
    sparsity that keeps fewer weights than there are layers is refused.

    >>> erk_counts([(300, 784), (100, 300), (10, 100)], 0.9)  # lenet-300-100: the classifier is dense
    (18714, 6906, 1000)
    >>> erk_counts([(2, 2), (64, 64)], 0.5)  # (2, 2) would keep 15.5x its size: dense
    (4, 2046)
    """
    sizes = tuple(math.prod(s) for s in shapes)
    total = global_count(sizes, sparsity, "round")
    if total < len(sizes):
        # a user's --sparsities reaches here when the run starts (RandomErk.check_sparsities): one line naming the fix
        raise SparsenasError(
            f"sparsity {sparsity} keeps {total} weights, fewer than the {len(sizes)} layers an ERK mask keeps one each; "
            f"use sparsities of at most {math.floor((1 - len(sizes) / sum(sizes)) * 1e6) / 1e6:g} with random-erk"
        )
    # quotas rounded like every count here, so float noise never moves a weight to another layer
    quotas = [round(q, 9) for q in _erk_quotas(shapes, total)]
    counts = [min(n, max(1, math.floor(q))) for q, n in zip(quotas, sizes)]
    # largest remainder: the layers furthest below their quota gain the weights the floors left out;
    # where lifting a layer to one weight overshot, those furthest above theirs give weights back
    while sum(counts) < total:
        i = min((i for i in range(len(sizes)) if counts[i] < sizes[i]), key=lambda i: (counts[i] - quotas[i], i))
        counts[i] += 1
    while sum(counts) > total:
        i = min((i for i in range(len(sizes)) if counts[i] > 1), key=lambda i: (quotas[i] - counts[i], i))
        counts[i] -= 1
    return tuple(counts)


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the k highest of a flat score vector; ties: lower index first; nan scores last."""
    s = scores.detach().double().cpu()
    s = torch.where(torch.isnan(s), torch.tensor(-math.inf, dtype=s.dtype), s)
    order = torch.sort(-s, stable=True).indices[:k]
    keep = torch.zeros(s.numel(), dtype=torch.bool)
    keep[order] = True
    return keep


def weight_mask_from_counts(scores: dict[str, torch.Tensor], counts: tuple[int, ...] | int) -> WeightMask:
    """Keep the highest-scoring weights: `counts[i]` of layer i, or, given one total, the best of the
    whole network. Ties go to the lower index (layer order, then row-major); nan scores go last.

    >>> s = {"a": torch.tensor([[3.0, 1.0], [2.0, 0.0]]), "b": torch.tensor([[9.0, 8.0]])}
    >>> weight_mask_from_counts(s, (1, 1)).kept_counts(), weight_mask_from_counts(s, 3).kept_counts()
    ((1, 1), (1, 2))
    """
    if not isinstance(counts, int):
        return WeightMask({n: _top(t.flatten(), c).view(t.shape) for (n, t), c in zip(scores.items(), counts)})
    flat = torch.cat([t.detach().flatten().double().cpu() for t in scores.values()])
    keep = _top(flat, counts)
    out, i = {}, 0
    for n, t in scores.items():
        out[n] = keep[i : i + t.numel()].view(t.shape)
        i += t.numel()
    return WeightMask(out)


def weight_mask_from_scores(
    scores: dict[str, torch.Tensor], sparsity: float, allocation: str = "per-layer", topk: str = "round"
) -> WeightMask:
    """Keep the highest-scoring weights at `sparsity`: the one score-to-mask step every finder shares.

    `scores` maps each prunable weight name to a tensor of its shape (higher = keep); `topk` is the
    global count's rule (`global_count`; per-layer counts always round).

    >>> s = {"a": torch.tensor([[3.0, 1.0], [2.0, 0.0]]), "b": torch.tensor([[9.0, 8.0]])}
    >>> weight_mask_from_scores(s, 0.5).tensors["a"].tolist()
    [[True, False], [True, False]]
    >>> weight_mask_from_scores(s, 0.5, "global").kept_counts()
    (1, 2)
    """
    sizes = tuple(t.numel() for t in scores.values())
    if allocation == "per-layer":
        return weight_mask_from_counts(scores, layer_counts(sizes, sparsity))
    if allocation != "global":
        raise ValueError(f"unknown allocation {allocation!r}; choose one of {', '.join(ALLOCATIONS)}")
    return weight_mask_from_counts(scores, global_count(sizes, sparsity, topk))


def random_weight_mask(parent: Parent, counts: tuple[int, ...], generator: torch.Generator) -> WeightMask:
    """Keep `counts[i]` weights of prunable layer i, uniformly at random (the weight-space control).

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 8, 8), 10, 0, (8,))
    >>> random_weight_mask(p, (5, 3), torch.Generator().manual_seed(0)).kept_counts()
    (5, 3)
    """
    params = dict(parent.named_parameters())
    out = {}
    for name, c in zip(parent.prunable_weights(), counts):
        shape = params[name].shape
        keep = torch.zeros(math.prod(shape), dtype=torch.bool)
        keep[torch.randperm(keep.numel(), generator=generator)[:c]] = True
        out[name] = keep.view(shape)
    return WeightMask(out)


def shuffle_weight_mask(mask: WeightMask, generator: torch.Generator) -> WeightMask:
    """The layerwise shuffle: each layer keeps as many weights as in `mask`, at random positions.

    >>> m = WeightMask({"w": torch.tensor([[True, True, False, False]])})
    >>> shuffle_weight_mask(m, torch.Generator().manual_seed(0)).kept_counts()
    (2,)
    """
    out = {}
    for name, t in mask.tensors.items():
        keep = torch.zeros(t.numel(), dtype=torch.bool)
        keep[torch.randperm(t.numel(), generator=generator)[: int(t.sum())]] = True
        out[name] = keep.view(t.shape)
    return WeightMask(out)


@torch.no_grad()
def connected(parent: Parent, mask: WeightMask, input_shape: tuple[int, ...]) -> WeightMask:
    """The kept weights that lie on some path from the input to the output (the *effective* mask).

    Every weight is set to its 0/1 mask value and every bias to 0; a forward pass of an all-ones
    input then carries a positive value exactly along connected paths (ReLU and max-pooling pass
    non-negative values unchanged), and the gradient of the output sum is positive exactly on weights
    that also reach the output. A kept weight with either side cut off can never affect the output:
    a mask whose effective mask is empty has collapsed. BatchNorm is never pruned, so it must pass
    paths through: in eval mode with scale 1, shift 0, running mean 0 and variance 1 it is the
    identity (up to its eps), where zeroing its scale like any other unmasked tensor would cut
    every path and call every BatchNorm network collapsed.

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 2, 2), 2, 0, (3,))
    >>> w = {"fc1.weight": torch.zeros(3, 4, dtype=torch.bool), "out.weight": torch.ones(2, 3, dtype=torch.bool)}
    >>> w["fc1.weight"][0, 0] = True; w["fc1.weight"][1, 1] = True
    >>> w["out.weight"][:, 1] = False  # node 1 is fed but feeds nothing
    >>> connected(p, WeightMask(w), (1, 2, 2)).kept_counts()
    (1, 2)
    """
    import copy

    probe = copy.deepcopy(parent).double().eval()
    masks = {n: t.to(next(probe.parameters()).device) for n, t in mask.tensors.items()}
    params = dict(probe.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in masks)
        p.copy_(masks[name].double() if name in masks else torch.zeros_like(p))
    for m in probe.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.weight is not None:
                m.weight.fill_(1.0)
            if m.running_mean is not None and m.running_var is not None:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    with torch.enable_grad():
        out = probe(torch.ones(1, *input_shape, dtype=torch.float64, device=next(probe.parameters()).device))
        grads = torch.autograd.grad(out.sum(), [params[n] for n in masks], allow_unused=True)
    return WeightMask({n: (g > 0) & masks[n] if g is not None else torch.zeros_like(masks[n]) for n, g in zip(masks, grads)})


def apply_weight_mask(model: nn.Module, mask: WeightMask) -> None:
    """Zero `model`'s masked weights in place (the full-size masked sub-network)."""
    with torch.no_grad():
        for name, keep in mask.tensors.items():
            w = model.get_parameter(name)
            w.mul_(keep.to(w.device, w.dtype))


def pack_weight_mask(mask: WeightMask) -> bytes:
    """The mask as compressed bits (layer order, row-major): what the store keeps of a weight trial.

    >>> m = WeightMask({"w": torch.tensor([[True, False, True]])})
    >>> len(pack_weight_mask(m)) < 16
    True
    """
    import zlib

    import numpy as np

    bits = torch.cat([t.flatten().cpu() for t in mask.tensors.values()]).numpy()
    return zlib.compress(np.packbits(bits).tobytes(), 9)


def unpack_weight_mask(blob: bytes, parent: Parent) -> WeightMask:
    """The `WeightMask` of `parent`'s shape that `pack_weight_mask` wrote.

    >>> from sparsenas.models import build_parent
    >>> p = build_parent("mlp", (1, 2, 2), 2, 0, (3,))
    >>> m = random_weight_mask(p, (5, 2), torch.Generator().manual_seed(0))
    >>> unpack_weight_mask(pack_weight_mask(m), p).tensors["fc1.weight"].equal(m.tensors["fc1.weight"])
    True
    """
    import zlib

    import numpy as np

    params = dict(parent.named_parameters())
    names = parent.prunable_weights()
    total = sum(params[n].numel() for n in names)
    bits = torch.from_numpy(np.unpackbits(np.frombuffer(zlib.decompress(blob), dtype=np.uint8))[:total].astype(bool))
    out, i = {}, 0
    for n in names:
        k = params[n].numel()
        out[n] = bits[i : i + k].view(params[n].shape).clone()
        i += k
    return WeightMask(out)
