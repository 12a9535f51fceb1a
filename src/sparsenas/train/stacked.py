"""K same-shape networks as one: their tensors stacked (K, ...), one forward over the stacks, one
optimizer over them, each member's own loss. `population.train_population` is the loop that drives it.

Members never exchange numbers: the loss is the sum of the members' mean losses, so each member's
gradient is its own, and SGD and Adam act element by element, so one optimizer over the stacked
tensors is K optimizers. A member can be dropped from the stacks with its optimizer state
(`Population.keep`); the others go on undisturbed.

Members agree with the same network trained alone to fp32 rounding, not to the last bit: a GEMM over
K stacked matrices may sum in another order than K separate GEMMs (the runner therefore forms
populations deterministically; see `protocol.populations`). A network with dropout draws its own dropout
masks per member, so its members follow other random draws than they would alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..data import Split, batches
from ..models.base import Parent, vmapped_forward
from .loss import member_losses
from .optim import FusedAdam, FusedSGD, StackedOptimizer, TorchOptimizer
from .spec import TrainSpec
from .stacked_graph import Forward, graph_stacked_forward

EVAL_ROWS = 32768  # samples x members evaluated per chunk: evaluation memory is independent of K


def eval_rows(k: int) -> int:
    """Samples per evaluation chunk for a population of `k`: 4096 alone, fewer as k grows, so that
    rows x members never exceeds EVAL_ROWS (beyond k = 32768, one sample at a time).

    >>> eval_rows(1), eval_rows(32), eval_rows(1024)
    (4096, 1024, 32)
    """
    return max(1, min(4096, EVAL_ROWS // max(1, k)))


def stacked_forward_of(base: nn.Module, each: bool = False) -> Forward:
    """The function (stacked params, x) -> logits (K, B, C) for networks shaped like `base`: x is
    one batch (B, ...) shared by the members, or with `each` every member's own, (K, B, ...)
    (members of several seeds; `Parent.stacked_forward_each`), by the same engine as shared batches.

    A Parent that overrides `stacked_forward` (MLP's stacked GEMMs) gives its own. A module with
    BatchNorm runs its traced graph on all members at once when every op in it allows that
    (`stacked_graph`; resnet20's population steps 1.8x faster than vmapped on the CPU), and is
    vmapped over its own forward otherwise. Nets without BatchNorm stay vmapped: their stored
    population results were computed so, and the graph path rounds differently (`population_engine`
    puts the path into a trial's key where it is taken).

    >>> f = stacked_forward_of(nn.Linear(4, 3))
    >>> p = {"weight": torch.zeros(2, 3, 4), "bias": torch.ones(2, 3)}
    >>> tuple(f(p, torch.zeros(5, 4)).shape)
    (2, 5, 3)
    """
    own = getattr(type(base), "stacked_forward", None)
    if own is not None and own is not Parent.stacked_forward:
        if not each:
            # getattr: mypy types an nn.Module's attributes as tensors or modules, not as its methods
            return getattr(base, "stacked_forward")
        # per-member batches: the class's own `stacked_forward_each` only if it was written with
        # (or after) its `stacked_forward`; a subclass that rewrote only `stacked_forward` (a
        # TanhMLP of MLP) would otherwise get its base's arithmetic. Else its own forward, vmapped.
        return getattr(base, "stacked_forward_each") if _each_matches(type(base)) else vmapped_forward(base, each=True)
    graph = graph_stacked_forward(base, each) if population_engine(base) == "graph" else None
    return graph or vmapped_forward(base, each)


def _each_matches(cls: type) -> bool:
    """Whether the class defining `cls.stacked_forward_each` is the one defining `cls.stacked_forward` or below it.

    >>> from sparsenas.models.mlp import MLP
    >>> class Tanh(MLP):
    ...     def stacked_forward(self, params, x): ...
    >>> _each_matches(MLP), _each_matches(Tanh)
    (True, False)
    """
    owner = lambda name: next(c for c in cls.__mro__ if name in vars(c))  # noqa: E731
    return issubclass(owner("stacked_forward_each"), owner("stacked_forward"))


def population_engine(base: nn.Module) -> str:
    """How populations of `base` run: "own" (its `stacked_forward`), "graph" (`stacked_graph`, for
    BatchNorm nets whose every op it knows) or "vmap". Trials trained by "graph" carry it in their key.

    >>> population_engine(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2)))
    'graph'
    >>> population_engine(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)))
    'vmap'
    """
    own = getattr(type(base), "stacked_forward", None)
    if own is not None and own is not Parent.stacked_forward:
        return "own"
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in base.modules()) and graph_stacked_forward(base) is not None:
        return "graph"
    return "vmap"


def make_stacked_optimizer(params: list[torch.Tensor], spec: TrainSpec) -> StackedOptimizer:
    """The optimizer `spec` names over stacked tensors: torch's fused kernels, without `torch.optim`'s
    wrapper (see `train/optim.py`: the same numbers, 1.5 s less start-up and less per step).

    >>> type(make_stacked_optimizer([torch.zeros(2, 3, requires_grad=True)], TrainSpec())).__name__
    'FusedSGD'
    """
    if spec.optimizer not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {spec.optimizer!r}")
    if not params or params[0].device.type in ("cpu", "cuda"):
        if spec.optimizer == "sgd":
            return FusedSGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
        return FusedAdam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "sgd":
        return TorchOptimizer(torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay))
    return TorchOptimizer(torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay))


class Population:
    """K networks of one shape as stacked tensors (K, ...), with one optimizer over them.

    A population of one trains its network's own tensors with the network's own forward: a trial
    alone is the classic PyTorch loop, with no stacking overhead.

    `masks` (one {tensor name: 0/1 tensor} per net) holds weight-masked members at zero: masked
    entries are zeroed at the start and after every optimizer step. SGD and Adam update element by
    element, so the kept weights follow exactly the trajectory of a net whose masked weights are
    absent (the masked entries' own momentum never reaches a kept weight).

    >>> nets = [nn.Linear(4, 3) for _ in range(2)]
    >>> pop = Population(nets, TrainSpec()); pop.size, tuple(pop.params["weight"].shape)
    (2, (2, 3, 4))
    """

    def __init__(self, nets: Sequence[nn.Module], spec: TrainSpec, masks: Sequence[dict[str, torch.Tensor]] | None = None) -> None:
        if not nets:
            raise ValueError("a population needs at least one network")
        self.spec = spec
        self.base = nets[0]
        shapes = [{n: tuple(t.shape) for n, t in net.state_dict().items()} for net in nets]
        if any(s != shapes[0] for s in shapes[1:]):
            raise ValueError("population members must share one shape (the same compacted widths)")
        self.solo = len(nets) == 1
        self._forward_each: Forward | None = None  # built on the first per-member batch
        if self.solo:
            self.params = dict(self.base.named_parameters()) | dict(self.base.named_buffers())
            self.forward: Forward = lambda _params, x: self.base(x).unsqueeze(0)
        else:
            self.forward = stacked_forward_of(self.base)
            tensors = [dict(net.named_parameters()) | dict(net.named_buffers()) for net in nets]
            trainable = {n for n, p in self.base.named_parameters() if p.requires_grad}
            self.params = {n: torch.stack([t[n].detach() for t in tensors]).requires_grad_(n in trainable) for n in tensors[0]}
        self.members = list(range(len(nets)))  # row r of every stack holds member self.members[r]
        self.masks: dict[str, torch.Tensor] = {}
        if masks is not None:
            if len(masks) != len(nets) or any(set(m) != set(masks[0]) for m in masks):
                raise ValueError("give one weight mask per net, all masking the same tensors")
            for name in masks[0]:
                t = self.params[name]
                stacked = masks[0][name] if self.solo else torch.stack([m[name] for m in masks])
                self.masks[name] = stacked.to(t.device) != 0  # bool: True = kept
            self._apply_masks()
        self.optimizer = make_stacked_optimizer(self._trainable(), spec)

    @torch.no_grad()
    def _apply_masks(self) -> None:
        for name, m in self.masks.items():
            # a fill, not a product: a masked entry whose update overflowed (inf * 0 = nan) is zero too
            self.params[name].masked_fill_(~m, 0.0)

    @property
    def size(self) -> int:
        return len(self.members)

    def _trainable(self) -> list[torch.Tensor]:
        return [t for t in self.params.values() if t.requires_grad]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(self.params, x)

    def logits_each(self, xs: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, C) of every member on its own batch, xs (K, B, ...)."""
        if self.solo:
            return self.base(xs[0]).unsqueeze(0)
        if self._forward_each is None:
            self._forward_each = stacked_forward_of(self.base, each=True)
        return self._forward_each(self.params, xs)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        """One optimizer step of every member on the batch (x, y); returns the members' losses (K,).

        A shared batch is x (B, ...), y (B,); members with their own batches (trials of different
        seeds) take x (K, B, ...), y (K, B), row r's batch for the member in row r."""
        self.optimizer.lr = lr
        self.base.train()
        losses = member_losses(self.logits_each(x) if y.dim() == 2 else self.logits(x), y)
        self.optimizer.zero_grad()
        losses.sum().backward()  # d(sum)/d(member k's weights) = d(loss k)/d(member k's weights)
        self.optimizer.step()
        self._apply_masks()
        return losses.detach()

    @torch.no_grad()
    def evaluate(self, split: Split) -> tuple[list[float], list[float]]:
        """Each member's (mean loss, accuracy) on `split`, as two lists in row order."""
        k, n = self.size, len(split)
        device = next(iter(self.params.values())).device
        loss_sum = torch.zeros(k, dtype=torch.float64, device=device)
        correct = torch.zeros(k, dtype=torch.int64, device=device)
        was_training = self.base.training
        self.base.eval()  # dropout off, batch norm on its running statistics
        try:
            for xb, yb in batches(split, eval_rows(k)):
                logits = self.logits(xb).contiguous()  # (K, B, C) rows: argmax is 7x slower on a transposed view
                loss_sum += member_losses(logits, yb, reduction="sum").double()
                correct += (logits.argmax(2) == yb).sum(1)
        finally:
            self.base.train(was_training)
        return (loss_sum / n).tolist(), (correct.double() / n).tolist()

    @torch.no_grad()
    def write_back(self, nets: Sequence[nn.Module], rows: Sequence[int] | None = None) -> None:
        """Copy the weights of the members at `rows` (default all) into their networks."""
        if self.solo:
            return  # a population of one trains its network in place
        for r in range(self.size) if rows is None else rows:
            own = dict(nets[self.members[r]].named_parameters()) | dict(nets[self.members[r]].named_buffers())
            for name, stack in self.params.items():
                own[name].copy_(stack[r])

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only the members at `rows`: stacks and optimizer state are sliced, nothing else changes."""
        if self.solo:
            self.members = [self.members[r] for r in rows]  # kept, or gone: nothing to slice
            return
        old = self._trainable()
        index = torch.tensor(list(rows), dtype=torch.long, device=old[0].device if old else "cpu")
        k = self.size
        self.params = {n: t.detach().index_select(0, index).requires_grad_(t.requires_grad) for n, t in self.params.items()}
        self.masks = {n: m.index_select(0, index) for n, m in self.masks.items()}
        new = self._trainable()
        state = self.optimizer.state
        self.optimizer = make_stacked_optimizer(new, self.spec)
        for o, p in zip(old, new):
            if o in state:
                # per-member state (momentum, Adam moments) is sliced; shared scalars (Adam's step) copied
                self.optimizer.state[p] = {
                    key: v.index_select(0, index)
                    if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == k
                    else (v.clone() if torch.is_tensor(v) else v)
                    for key, v in state[o].items()
                }
        self.members = [self.members[r] for r in rows]
