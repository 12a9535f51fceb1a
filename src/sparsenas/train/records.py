"""One point of a learning curve: what the training loop measures after each epoch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EpochRecord:
    """One point of a learning curve, measured after `epoch` epochs of training (epoch 0 = at init)."""

    epoch: int
    train_loss: float  # mean minibatch loss over the epoch (at epoch 0: loss on the train split)
    val_loss: float
    val_acc: float  # in [0, 1]
    test_acc: float  # in [0, 1]; recorded every epoch so best-validation test accuracy can be read
