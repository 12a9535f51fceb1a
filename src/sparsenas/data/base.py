"""In-memory datasets with fixed splits, and batches sliced by index.

Every dataset is held as tensors (no per-sample DataLoader): images as float32 (N, C, H, W),
normalized with the train split's mean and std, labels as int64 (N,). The train/validation/test
split is fixed by the dataset (a fixed rule, never the trial seed), so every trial of every run on
that dataset sees the same splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ..errors import SparsenasError
from ..registry import Registry


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (N, C, H, W) float32 images, or (N, F) features
    y: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits of one dataset, already normalized.

    >>> ds = load_dataset("digits")
    >>> ds.input_shape, ds.num_classes, len(ds.train), len(ds.val), len(ds.test)
    ((1, 8, 8), 10, 1257, 180, 360)
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    digest: str = field(default="", compare=False, repr=False)  # its `fingerprint`, where already known (data.cache)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(self.name, self.train.to(device), self.val.to(device), self.test.to(device), self.num_classes, self.digest)


def split_and_normalize(
    name: str,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    n_val: int,
    num_classes: int,
    per_feature: bool = False,
    source: str = "the data",
    per_channel: bool = False,
) -> Dataset:
    """Check the data, carve a validation split from train by a fixed rule and normalize with train statistics.

    The rule: a permutation of the train indices drawn from a generator seeded with 0 (independent of
    any trial seed); its first `n_val` indices are validation, the rest train, in original order.
    Images (N, C, H, W) share one mean and std; tabular data (N, F) is better served by
    `per_feature=True`, which standardizes each feature on its own; colour images by `per_channel=True`,
    one mean and std per channel over (N, H, W), as is usual for CIFAR. The train and validation
    copies are normalized in place (one float copy of each split in all). Every dataset passes through here,
    so `check_data` runs here, on the data as given (`source` says where it came from, for the fix).

    >>> x, y = torch.randn(100, 5), torch.randint(0, 3, (100,))
    >>> ds = split_and_normalize("toy", x[:80], y[:80], x[80:], y[80:], n_val=10, num_classes=3, per_feature=True)
    >>> len(ds.train), len(ds.val), len(ds.test), ds.input_shape
    (70, 10, 20, (5,))
    >>> rgb = torch.rand(100, 3, 4, 4) * torch.tensor([1.0, 10.0, 100.0]).view(1, 3, 1, 1)
    >>> ds = split_and_normalize("rgb", rgb[:80], y[:80], rgb[80:], y[80:], n_val=10, num_classes=3, per_channel=True)
    >>> [round(s, 3) for s in ds.train.x.std((0, 2, 3)).tolist()]  # each channel on its own, though 1 to 100 apart
    [1.0, 1.0, 1.0]
    """
    if x_train.ndim < 2 or x_train.shape[1:] != x_test.shape[1:] or len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError("x_train/x_test must be (N, ...) with equal sample shapes and as many labels as samples")
    if not 0 < n_val < len(x_train):
        raise ValueError(f"n_val must be in (0, {len(x_train)}), got {n_val}")
    if per_channel and (per_feature or x_train.ndim != 4):
        raise ValueError("per_channel=True takes images (N, C, H, W) and excludes per_feature=True")
    # before normalizing: one NaN pixel would make every image NaN, and indices must be the caller's
    check_data(name, "train", x_train, y_train, num_classes, source)
    check_data(name, "test", x_test, y_test, num_classes, source)
    if bool((y_train == y_train[0]).all()):
        raise SparsenasError(
            f"dataset '{name}': every label of the train split is {_show(y_train[0])}, so there is nothing to tell apart; "
            f"a classifier needs at least 2 classes: check the labels in {source}"
        )
    n = x_train.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    val_idx = perm[:n_val].sort().values
    train_idx = perm[n_val:].sort().values
    x_tr = x_train[train_idx].float()
    if per_channel:
        var, mean = torch.var_mean(x_tr, dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1) each; unbiased, as std()
        std = var.sqrt()
    elif per_feature:
        mean, std = x_tr.mean(0), x_tr.std(0).clamp_min(1e-8)
    else:
        mean, std = x_tr.mean(), x_tr.std()  # one scalar each: pixel intensities share a scale
    if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(std).all()) and bool((std > 0).all())):
        # finite inputs can still overflow float32 in the sum (|x| ~ 1e36), or all be equal (std 0):
        # either trains as NaN, reported as "diverged" with exit 0, unless refused here
        raise SparsenasError(
            f"dataset '{name}': its train inputs cannot be normalized (mean {float(mean.flatten()[0]):.3g}, std "
            f"{float(std.flatten().min()):.3g}): values too large for float32 or all equal; rescale them" + f" in {source}"
        )
    # x_tr and the validation rows are fresh copies (indexing copies), so they are normalized in place
    # (the same arithmetic as `(x - mean) / std`, without two more copies of 55k images); the test
    # split may be the caller's own float tensor, so it gets one new tensor
    x_val = x_train[val_idx].float()
    for x in (x_tr, x_val):
        x.sub_(mean).div_(std)
    return Dataset(
        name=name,
        # contiguous: indexing keeps a caller's channels-last strides, which the old copies did not
        train=Split(x_tr.contiguous(), y_train[train_idx].long()),
        val=Split(x_val.contiguous(), y_train[val_idx].long()),
        test=Split((x_test.float() - mean).div_(std).contiguous(), y_test.long()),
        num_classes=num_classes,
    )


def _show(v: torch.Tensor) -> str:
    """A label as the user wrote it: 3 for 3 or 3.0, 0.5 for 0.5, nan for NaN."""
    f = float(v)
    return str(int(f)) if f.is_integer() else str(f)


def check_data(name: str, split: str, x: torch.Tensor, y: torch.Tensor, num_classes: int, source: str = "the data") -> None:
    """Refuse labels outside 0..num_classes-1 (or not whole) and non-finite inputs, in one line.

    Such data ends in an IndexError deep inside cross_entropy, or trains as "diverged" and exits 0.
    Vectorized and cheap: one comparison per label and one sum over the inputs (Fashion-MNIST's 55M
    pixels take tens of milliseconds, a tenth of normalizing them); indices are looked up on failure.

    >>> check_data("toy", "train", torch.zeros(3, 2), torch.tensor([0, 1, 5]), num_classes=3)
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: dataset 'toy': label 5 at index 2 of the train split; class indices start at 0 and end at 2: correct or drop those samples in the data
    """
    bad = (y < 0) | (y >= num_classes)
    if y.is_floating_point():
        bad |= y != y.round()  # NaN != NaN, so NaN labels count as bad too
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        more = int(bad.sum()) - 1
        also = f" (and {more} more)" if more else ""
        raise SparsenasError(
            f"dataset '{name}': label {_show(y[i])} at index {i} of the {split} split{also}; class indices start at 0 "
            f"and end at {num_classes - 1}: correct or drop those samples in {source}"
        )
    # a sum is NaN or inf if any value is (a reduction, ~10x faster than isfinite's (N, ...) bool mask);
    # only then is the exact mask built, which also clears a sum that merely overflowed
    if x.is_floating_point() and not bool(torch.isfinite(x.sum())):
        rows = ~torch.isfinite(x.reshape(len(x), -1)).all(1)  # (N,): samples holding a NaN or an inf
        if not bool(rows.any()):
            return
        i = int(rows.nonzero()[0])
        more = int(rows.sum()) - 1
        also = f" (and {more} more)" if more else ""
        what = "NaN" if bool(x[i].isnan().any()) else "an infinite value"
        raise SparsenasError(
            f"dataset '{name}': input {i} of the {split} split holds {what}{also}; every input value must be finite: "
            f"replace or drop those samples in {source}"
        )


def batches(split: Split, batch_size: int, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches of `split`, shuffled by `generator` if given, sliced from the in-memory tensors.

    >>> ds = load_dataset("digits")
    >>> xb, yb = next(batches(ds.train, 32, torch.Generator().manual_seed(0)))
    >>> tuple(xb.shape), tuple(yb.shape)
    ((32, 1, 8, 8), (32,))
    """
    n = len(split)
    if generator is None:
        for i in range(0, n, batch_size):
            yield split.x[i : i + batch_size], split.y[i : i + batch_size]
        return
    for idx in batch_indices(n, batch_size, generator, split.x.device):
        yield split.x.index_select(0, idx), split.y.index_select(0, idx)


def batch_indices(n: int, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """The sample indices of each shuffled minibatch `batches` yields: one permutation of range(n)
    drawn from `generator`, cut into `batch_size` pieces (the last may be shorter).

    >>> [t.tolist() for t in batch_indices(5, 2, torch.Generator().manual_seed(0))]
    [[4, 0], [1, 3], [2]]
    """
    perm = torch.randperm(n, generator=generator).to(device)
    for i in range(0, n, batch_size):
        yield perm[i : i + batch_size]


def fingerprint(ds: Dataset) -> str:
    """16 hex digits of the SHA-256 of every split's tensors: what a run directory is bound to, so a
    resumed run can never mix trials trained on different data under one name.

    >>> fingerprint(load_dataset("digits")) == fingerprint(load_dataset("digits"))
    True
    """
    if ds.digest:  # computed from these very tensors when the cache stored them
        return ds.digest
    h = hashlib.sha256()
    for split in (ds.train, ds.val, ds.test):
        for t in (split.x, split.y):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def no_data_dir(name: str, data_dir: str | None) -> None:
    """For datasets shipped inside a package: refuse a --data-dir rather than silently ignore it.

    >>> no_data_dir("digits", None)
    """
    if data_dir is not None:
        raise SparsenasError(f"dataset '{name}' ships inside a Python package and reads no --data-dir; drop --data-dir")


# A loader takes the data directory (or None for its default) and returns the Dataset.
DATASETS: Registry = Registry("dataset")


def load_dataset(name: str, data_dir: str | None = None, limit: int | None = None) -> Dataset:
    """Load a registered dataset; `limit` keeps the first `limit` samples of each split (for tests).

    >>> load_dataset("digits", limit=50).train.x.shape[0]
    50
    """
    loader = DATASETS.get(name)
    ds: Dataset = loader(data_dir)
    if limit is not None:
        if limit < ds.num_classes:
            raise SparsenasError(
                f"--limit {limit} keeps fewer samples per split than {name} has classes ({ds.num_classes}); use --limit 100 or more"
            )
        cut = lambda s: Split(s.x[:limit].contiguous(), s.y[:limit].contiguous())  # noqa: E731
        ds = Dataset(ds.name, cut(ds.train), cut(ds.val), cut(ds.test), ds.num_classes)
    return ds
