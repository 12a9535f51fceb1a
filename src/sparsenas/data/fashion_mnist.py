"""Fashion-MNIST (Xiao et al. 2017): 60k train / 10k test 28x28 grayscale images, 10 classes.

Read from the four standard IDX files in `--data-dir`, by default /usr/share/datasets/fashion-mnist
where Debian's `dataset-fashion-mnist` package installs them. Validation: 5,000 images carved from
the official train split by a fixed rule (see `split_and_normalize`); test is the official test set.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import SparsenasError
from .base import DATASETS, Dataset, split_and_normalize
from .cache import cached_dataset
from .idx import find_idx, read_idx

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def load_idx_dir(name: str, data_dir: Path, n_val: int, num_classes: int = 10) -> Dataset:
    """Load an MNIST-format folder (four IDX files) into a `Dataset` with `n_val` validation images.

    `num_classes` is fixed by the dataset, not read off the labels, so a stray label 10 is refused
    (by `check_data`) rather than silently adding an eleventh class.

    >>> load_idx_dir("fashion-mnist", Path(DEFAULT_DIR), n_val=5000).num_classes  # doctest: +SKIP
    10
    """
    if not data_dir.is_dir():
        raise SparsenasError(
            f"data directory '{data_dir}' does not exist; pass --data-dir with the four IDX files "
            "(on Debian: apt-get install dataset-fashion-mnist)"
        )
    paths = [find_idx(data_dir, f) for f in FILES]
    return cached_dataset(
        name, paths, {"n_val": n_val, "num_classes": num_classes}, lambda: _decode(name, data_dir, paths, n_val, num_classes)
    )


def _decode(name: str, data_dir: Path, paths: list[Path], n_val: int, num_classes: int) -> Dataset:
    xtr, ytr, xte, yte = (read_idx(p) for p in paths)
    for images, labels, what in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise SparsenasError(
                f"{what} images {images.shape} and labels {labels.shape} in '{data_dir}' do not match; re-copy the IDX files"
            )
        if images.shape[0] == 0:
            raise SparsenasError(f"the {what} files in '{data_dir}' hold no images; re-copy the IDX files")
    if xtr.shape[1:] != xte.shape[1:]:
        raise SparsenasError(
            f"train images are {xtr.shape[1]}x{xtr.shape[2]} but test images {xte.shape[1]}x{xte.shape[2]} "
            f"in '{data_dir}'; the four files must come from one dataset"
        )
    if xtr.shape[0] <= 2 * n_val:
        raise SparsenasError(
            f"'{data_dir}' holds {xtr.shape[0]} training images; {name} carves {n_val} for validation and "
            f"needs more than {2 * n_val}: point --data-dir at the full IDX files"
        )
    # one float copy, scaled in place (the same division as numpy's `/ 255.0`): (N, 1, 28, 28)
    as_x = lambda a: torch.from_numpy(a.astype("float32")).div_(255.0).unsqueeze(1)  # noqa: E731
    # float labels (IDX types 0x0D/0x0E) stay float, so check_data names a 0.5 or a NaN instead of a cast's garbage
    as_y = lambda a: torch.from_numpy(a.astype("float64" if a.dtype.kind == "f" else "int64"))  # noqa: E731
    return split_and_normalize(
        name,
        as_x(xtr),
        as_y(ytr),
        as_x(xte),
        as_y(yte),
        n_val=n_val,
        num_classes=num_classes,
        source=f"the IDX files in '{data_dir}' (or re-copy them)",
    )


@DATASETS.register("fashion-mnist", help="Fashion-MNIST IDX files (60k train incl. 5k validation, 10k test; 28x28, 10 classes)")
def load_fashion_mnist(data_dir: str | None = None) -> Dataset:
    return load_idx_dir("fashion-mnist", Path(data_dir or DEFAULT_DIR), n_val=5000)
