"""Training layer: the one training loop and its hyperparameters."""

from .spec import TrainSpec
from .loop import TrainResult, evaluate, train

__all__ = ["TrainResult", "TrainSpec", "evaluate", "train"]
