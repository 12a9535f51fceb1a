"""Your own data as a sparsenas `Dataset`: from tensors (or arrays), or from torch `Dataset`s.

Both are thin: they check what they are given, then hand it to `split_and_normalize`, which carves
the validation split by the same fixed rule as every shipped dataset and normalizes with the train
split's statistics. Register the result with ``DATASETS.register`` to use it in a run.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset

from ..errors import SparsenasError
from .base import Dataset, split_and_normalize


def _inputs(name: str, which: str, x: Any) -> torch.Tensor:
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise SparsenasError(
            f"dataset '{name}': {which} inputs are not tensor-like ({type(x).__name__}: {e}); pass tensors or arrays"
        ) from None
    if t.ndim < 2 or t.shape[0] == 0:
        raise SparsenasError(f"dataset '{name}': {which} inputs must be (N, ...) with N >= 1, got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)):
        raise SparsenasError(f"dataset '{name}': {which} inputs have dtype {t.dtype}; pass real numbers")
    return t.float()


def _labels(name: str, which: str, y: Any, n: int) -> torch.Tensor:
    try:
        t = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError) as e:
        raise SparsenasError(
            f"dataset '{name}': {which} labels are not tensor-like ({type(y).__name__}: {e}); pass int class indices"
        ) from None
    if t.ndim != 1 or t.shape[0] != n:
        raise SparsenasError(f"dataset '{name}': {which} labels must be ({n},), one class index per input, got shape {tuple(t.shape)}")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise SparsenasError(f"dataset '{name}': {which} labels are not whole numbers; pass int class indices 0..K-1")
    elif t.dtype == torch.bool or t.is_complex():
        raise SparsenasError(f"dataset '{name}': {which} labels have dtype {t.dtype}; pass int class indices 0..K-1")
    # the range (0..K-1) and single-class checks are split_and_normalize's, for every dataset alike
    return t.long()


def from_tensors(
    name: str,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    n_val: int | None = None,
    num_classes: int | None = None,
    per_feature: bool = False,
) -> Dataset:
    """A `Dataset` from train and test inputs (N, ...) and int labels (N,): tensors or arrays.

    `n_val` train samples become the validation split (default: a tenth of train); `num_classes`
    defaults to the largest label + 1. `per_feature=True` standardizes each feature on its own, as
    tabular data with mixed scales needs; images share one mean and std.

    >>> x, y = torch.randn(120, 1, 4, 4), torch.arange(120) % 3
    >>> ds = from_tensors("toy", x[:100], y[:100], x[100:], y[100:])
    >>> ds.input_shape, ds.num_classes, len(ds.train), len(ds.val), len(ds.test)
    ((1, 4, 4), 3, 90, 10, 20)
    """
    xtr, xte = _inputs(name, "train", x_train), _inputs(name, "test", x_test)
    ytr, yte = _labels(name, "train", y_train, len(xtr)), _labels(name, "test", y_test, len(xte))
    if xtr.shape[1:] != xte.shape[1:]:
        raise SparsenasError(
            f"dataset '{name}': train inputs are {tuple(xtr.shape[1:])} but test inputs {tuple(xte.shape[1:])}; give both one sample shape"
        )
    seen = max(int(ytr.max()), int(yte.max()), 0) + 1  # floor 0: negative labels are named by check_data
    k = seen if num_classes is None else num_classes
    if k < seen:
        raise SparsenasError(
            f"dataset '{name}': num_classes={num_classes} but a label is {seen - 1}; use num_classes={seen} or fix the labels"
        )
    n_val = max(1, len(xtr) // 10) if n_val is None else n_val
    if not 0 < n_val < len(xtr):
        raise SparsenasError(f"dataset '{name}': n_val must be in [1, {len(xtr) - 1}] (train has {len(xtr)} samples), got {n_val}")
    return split_and_normalize(name, xtr, ytr, xte, yte, n_val=n_val, num_classes=k, per_feature=per_feature)


def _materialize(name: str, which: str, ds: TorchDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (input, label) item of a map-style dataset, stacked: inputs (N, ...) and labels (N,)."""
    try:
        n = len(ds)  # type: ignore[arg-type]
    except TypeError:
        raise SparsenasError(f"dataset '{name}': the {which} dataset has no len(); pass a map-style torch Dataset") from None
    if n == 0:
        raise SparsenasError(f"dataset '{name}': the {which} dataset is empty")
    xs: list[torch.Tensor] = []
    ys: list[int] = []
    for i in range(n):
        item = ds[i]
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise SparsenasError(
                f"dataset '{name}': {which} item {i} is a {type(item).__name__}, not an (input, label) pair; "
                "make __getitem__ return (tensor, int)"
            )
        x, y = item
        try:
            xt = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError):
            raise SparsenasError(
                f"dataset '{name}': {which} item {i} has a {type(x).__name__} input, not a tensor or array; "
                "convert it in __getitem__ (e.g. torchvision's ToTensor)"
            ) from None
        if isinstance(y, torch.Tensor) and y.numel() == 1 and not y.is_floating_point() and y.dtype != torch.bool:
            y = y.item()
        if isinstance(y, bool) or not isinstance(y, numbers.Integral):
            raise SparsenasError(
                f"dataset '{name}': {which} item {i} has label {y!r} ({type(y).__name__}); labels must be int class indices"
            )
        if xs and xt.shape != xs[0].shape:
            raise SparsenasError(
                f"dataset '{name}': {which} item {i} has input shape {tuple(xt.shape)} but item 0 has "
                f"{tuple(xs[0].shape)}; every input must have one shape (resize or pad in __getitem__)"
            )
        xs.append(xt)
        ys.append(int(y))
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


def from_torch_dataset(
    name: str,
    train: TorchDataset,
    test: TorchDataset,
    n_val: int | None = None,
    num_classes: int | None = None,
    per_feature: bool = False,
) -> Dataset:
    """A `Dataset` from two map-style torch datasets whose items are (input tensor-like, int label).

    Every item is read once and held in memory, as all sparsenas data is (no DataLoader in the
    training loop). `n_val`, `num_classes` and `per_feature` are as in `from_tensors`.

    >>> from torch.utils.data import TensorDataset
    >>> x, y = torch.randn(60, 5), torch.arange(60) % 2
    >>> ds = from_torch_dataset("toy", TensorDataset(x[:50], y[:50]), TensorDataset(x[50:], y[50:]), n_val=10)
    >>> ds.input_shape, ds.num_classes, len(ds.train), len(ds.val), len(ds.test)
    ((5,), 2, 40, 10, 10)
    """
    x_train, y_train = _materialize(name, "train", train)
    x_test, y_test = _materialize(name, "test", test)
    return from_tensors(name, x_train, y_train, x_test, y_test, n_val=n_val, num_classes=num_classes, per_feature=per_feature)
