"""scikit-learn's bundled handwritten digits (8x8, 1797 images): the embedded default dataset.

It ships inside scikit-learn, loads in milliseconds and needs no data directory, so the default run
and the tests work on any machine. Split: 360 test images by a fixed permutation, then 180
validation images carved from the remaining 1437.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from .base import DATASETS, Dataset, no_data_dir, split_and_normalize


@DATASETS.register("digits", help="scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes); embedded default")
def load_digits(data_dir: str | None = None) -> Dataset:
    no_data_dir("digits", data_dir)
    images, target = _read_digits()
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.tensor(target, dtype=torch.int64)
    # digits has no official test split: hold out a fixed 360 (20%) by a permutation seeded with 1.
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    test, train = perm[:360].sort().values, perm[360:].sort().values
    return split_and_normalize("digits", x[train], y[train], x[test], y[test], n_val=180, num_classes=10)


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """Images (1797, 8, 8) and labels, read from the CSV inside scikit-learn's package as its
    `load_digits` reads it (`np.loadtxt`, comma-separated, the label last), without importing
    scikit-learn: `import sklearn.datasets` alone takes about a second, the file 20 ms.

    >>> images, target = _read_digits(); images.shape, target[:5].tolist()
    ((1797, 8, 8), [0, 1, 2, 3, 4])
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    csv = Path(roots[0]) / "datasets" / "data" / "digits.csv.gz" if roots else None
    if csv is None or not csv.is_file():  # a scikit-learn laid out otherwise: ask it
        from sklearn.datasets import load_digits as sk_digits

        bunch = sk_digits()
        return bunch.images, bunch.target
    with gzip.open(csv, "rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
