"""Training layer: the one training loop (a population of K same-shape networks; K = 1 alone)."""

from ..measures import EpochRecord
from .loop import evaluate, train
from .memory import peak_memory, population_size, release_memory, reset_peak_memory, tune_malloc
from .population import Checkpoints, Population, TrainResult, total_steps, train_population
from .spec import TrainSpec

__all__ = [
    "Checkpoints",
    "EpochRecord",
    "Population",
    "TrainResult",
    "TrainSpec",
    "evaluate",
    "peak_memory",
    "population_size",
    "release_memory",
    "reset_peak_memory",
    "total_steps",
    "train",
    "train_population",
    "tune_malloc",
]
