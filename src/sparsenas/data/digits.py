"""scikit-learn's bundled handwritten digits (8x8, 1797 images): the embedded default dataset.

It ships inside scikit-learn, loads in milliseconds and needs no data directory, so the default run
and the tests work on any machine. Split: 360 test images by a fixed permutation, then 180
validation images carved from the remaining 1437.
"""

from __future__ import annotations

import torch

from .base import DATASETS, Dataset, no_data_dir, split_and_normalize


@DATASETS.register("digits", help="scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes); embedded default")
def load_digits(data_dir: str | None = None) -> Dataset:
    no_data_dir("digits", data_dir)
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    # digits has no official test split: hold out a fixed 360 (20%) by a permutation seeded with 1.
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    test, train = perm[:360].sort().values, perm[360:].sort().values
    return split_and_normalize("digits", x[train], y[train], x[test], y[test], n_val=180, num_classes=10)
