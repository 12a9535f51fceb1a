"""One network trained alone: the population loop with K = 1, and single-network evaluation.

`train` exists for callers that hold one `nn.Module` (finders, examples, tests); it is
`train_population([model], ...)`, so a trial trained alone and one trained in a population go
through the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..data import Dataset, Split
from ..measures import EpochRecord
from .population import Population, TrainResult, train_population
from .spec import TrainSpec


@torch.no_grad()
def evaluate(model: nn.Module, split: Split) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of `model` on `split`.

    >>> from sparsenas.data import load_dataset
    >>> from sparsenas.models import build_parent
    >>> ds = load_dataset("digits"); m = build_parent("mlp", ds.input_shape, 10, seed=0)
    >>> loss, acc = evaluate(m, ds.val); 0.0 <= acc <= 1.0
    True
    """
    losses, accs = Population([model], TrainSpec()).evaluate(split)
    return losses[0], accs[0]


def train(
    model: nn.Module,
    data: Dataset,
    spec: TrainSpec,
    data_seed: int,
    max_steps: int | None = None,
    callbacks: Sequence[Callable[[EpochRecord], None]] = (),
) -> TrainResult:
    """Train `model` in place for `spec.epochs` epochs (or `max_steps` steps) and return its curve.

    >>> from sparsenas.data import load_dataset
    >>> from sparsenas.models import build_parent
    >>> ds = load_dataset("digits"); m = build_parent("mlp", ds.input_shape, 10, seed=0)
    >>> r = train(m, ds, TrainSpec(epochs=2), data_seed=0); [e.epoch for e in r.curve], r.status
    ([0, 1, 2], 'done')
    """

    def hook(_member: int, rec: EpochRecord) -> None:
        for cb in callbacks:
            cb(rec)

    return train_population([model], data, spec, data_seed, max_steps, on_epoch=hook)[0]
