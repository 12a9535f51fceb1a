"""Training hyperparameters: one typed, frozen dataclass, shared by every trial of a run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainSpec:
    """How every trial of a run is trained (the same budget for finders and controls).

    >>> TrainSpec(epochs=3).lr
    0.05
    """

    epochs: int = field(default=30, metadata={"help": "training epochs of every trial", "range": (1, 100_000)})
    batch_size: int = field(default=64, metadata={"help": "minibatch size", "range": (1, 2**24)})
    optimizer: str = field(default="sgd", metadata={"help": "sgd (with momentum) or adam", "choices": ("sgd", "adam")})
    lr: float = field(default=0.05, metadata={"help": "learning rate"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 weight decay"})
    schedule: str = field(
        default="constant", metadata={"help": "learning-rate schedule: constant or cosine", "choices": ("constant", "cosine")}
    )
    # added after hash v1: at "none" it enters no trial's key (protocol.plan.canonical_train)
    augment: str = field(
        default="none",
        metadata={
            "help": "augmentation of training batches: none, or crop-flip (each image cropped at random after 4-pixel zero "
            "padding, flipped left-right with probability 1/2; images only; drawn from the seed: every trial of a seed sees the same batches)",
            "choices": ("none", "crop-flip"),
        },
    )


# TrainSpec fields that existed at protocol.plan.HASH_VERSION 1: always hashed. A field added later enters a
# trial's hash only when set away from its default, so adding a no-op option (say, label smoothing
# 0.0) leaves every stored trial's key, and so every resume, valid.
V1_TRAIN_FIELDS = frozenset({"epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule"})


def canonical_train(train: TrainSpec) -> dict[str, Any]:
    """The hashed view of a TrainSpec: v1 fields always, later fields only when not at default.

    >>> sorted(canonical_train(TrainSpec()))
    ['batch_size', 'epochs', 'lr', 'momentum', 'optimizer', 'schedule', 'weight_decay']
    """
    default = TrainSpec()
    return {k: v for k, v in dataclasses.asdict(train).items() if k in V1_TRAIN_FIELDS or v != getattr(default, k)}
