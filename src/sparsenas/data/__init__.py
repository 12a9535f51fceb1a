"""Data layer: registered datasets held as in-memory tensors with fixed splits."""

from . import cifar, digits, fashion_mnist, mnist5k  # noqa: F401  (registration)
from .base import DATASETS, Dataset, Split, batch_indices, batches, fingerprint, load_dataset, split_and_normalize
from .wrap import from_tensors, from_torch_dataset

__all__ = [
    "DATASETS",
    "Dataset",
    "Split",
    "batch_indices",
    "batches",
    "fingerprint",
    "from_tensors",
    "from_torch_dataset",
    "load_dataset",
    "split_and_normalize",
]
