"""What a search and a training epoch measured: plain records that every layer shares.

Finders report a `SearchCost`, the training loop an `EpochRecord` per epoch, and the store keeps
both inside a trial's record. They live at the package root, below every layer, so the store needs
no finder or training type to hold them (open_lth keeps its metrics apart from its runners alike).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchCost:
    """What a finder spent before the final training (zero for `dense` and `random`).

    >>> SearchCost(candidates=20, steps=0).candidates
    20
    """

    candidates: int = 0  # masks proposed and scored
    steps: int = 0  # training steps summed over candidates (candidate-steps)
    flops: float = 0.0  # forward+backward FLOPs spent scoring and training candidates
    seconds: float = 0.0


@dataclass(frozen=True)
class EpochRecord:
    """One point of a learning curve, measured after `epoch` epochs of training (epoch 0 = at init).

    >>> EpochRecord(0, 2.3, 2.3, 0.1, 0.1).epoch
    0
    """

    epoch: int
    train_loss: float  # mean minibatch loss over the epoch (at epoch 0: loss on the train split)
    val_loss: float
    val_acc: float  # in [0, 1]
    test_acc: float  # in [0, 1]; recorded every epoch so best-validation test accuracy can be read
