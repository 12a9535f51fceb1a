"""Training layer: the one training loop and its hyperparameters."""

from .spec import TrainSpec
from .loop import TrainResult, evaluate, train
from .records import EpochRecord

__all__ = ["EpochRecord", "TrainResult", "TrainSpec", "evaluate", "train"]
