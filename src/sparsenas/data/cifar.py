"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009): 50k train / 10k test 32x32 colour images, 10 or 100 classes.

Read from the official *binary version* of each archive, which the user downloads from
https://www.cs.toronto.edu/~kriz/cifar.html and unpacks; nothing is downloaded here and there is no
default folder, so `--data-dir` is required. It may name the unpacked folder itself or its parent:

- CIFAR-10 (``cifar-10-binary.tar.gz``): ``cifar-10-batches-bin/`` holds ``data_batch_1.bin`` ..
  ``data_batch_5.bin`` (train) and ``test_batch.bin``, each 10,000 records of 3,073 bytes: a label
  byte (0-9), then 3,072 pixel bytes, the red, green and blue 32x32 planes, each row-major.
- CIFAR-100 (``cifar-100-binary.tar.gz``): ``cifar-100-binary/`` holds ``train.bin`` (50,000
  records) and ``test.bin`` (10,000), each record 3,074 bytes: a coarse label byte (0-19), a fine
  label byte (0-99), then the 3,072 pixel bytes. The 100 fine labels are the classes.

The *python version* of the archives (``cifar-10-batches-py``, ``cifar-100-python``) is deliberately
not read: its files are pickles, and unpickling a file runs whatever code it names. A folder of the
python version is refused in one line that points to the binary version. The binary files are read
with numpy as plain bytes, whole files at a time (no loop over records), and checked like the IDX
files: a missing, empty, truncated or over-long file, or a label byte out of range, is one
`SparsenasError` naming the file and the fix.

Images are float32 (N, 3, 32, 32) in [0, 1] before normalization, which is per channel: each of R, G
and B gets its own mean and std from the train split (`split_and_normalize(per_channel=True)`).
Validation: 5,000 images carved from the official train split by the fixed rule (see
`split_and_normalize`), as for Fashion-MNIST; test is the official test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import SparsenasError
from .base import DATASETS, Dataset, split_and_normalize
from .cache import cached_dataset

URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
PIXELS = 3 * 32 * 32  # bytes of one image: the R, G and B planes, 32x32 each
N_VAL = 5000


@dataclass(frozen=True)
class CifarFormat:
    """One dataset's binary layout: its folder, files with their official record counts, label bytes."""

    name: str  # the registry name
    title: str  # as the archive's web page names it
    folder: str  # the folder the binary archive unpacks to
    archive: str  # the binary archive's file name
    python_folder: str  # the python version's folder (pickles), refused
    python_files: tuple[str, ...]  # files only the python version has, to recognize its folder
    train: tuple[tuple[str, int], ...]  # (file, records) in order
    test: tuple[str, int]
    labels: tuple[tuple[str, int], ...]  # the label bytes at the start of a record: (what, largest value)
    num_classes: int  # the last label byte is the class

    @property
    def record(self) -> int:
        return len(self.labels) + PIXELS

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for f, _ in (*self.train, self.test))

    def fix(self) -> str:
        return f"download the '{self.title} binary version' ({self.archive}) from {URL} again and unpack it"


CIFAR10 = CifarFormat(
    name="cifar10",
    title="CIFAR-10",
    folder="cifar-10-batches-bin",
    archive="cifar-10-binary.tar.gz",
    python_folder="cifar-10-batches-py",
    python_files=("data_batch_1", "batches.meta"),
    train=tuple((f"data_batch_{i}.bin", 10_000) for i in range(1, 6)),
    test=("test_batch.bin", 10_000),
    labels=(("label", 9),),
    num_classes=10,
)
CIFAR100 = CifarFormat(
    name="cifar100",
    title="CIFAR-100",
    folder="cifar-100-binary",
    archive="cifar-100-binary.tar.gz",
    python_folder="cifar-100-python",
    python_files=("meta",),
    train=(("train.bin", 50_000),),
    test=("test.bin", 10_000),
    labels=(("coarse label", 19), ("fine label", 99)),
    num_classes=100,
)


def find_folder(fmt: CifarFormat, data_dir: str | None) -> Path:
    """The folder holding `fmt`'s binary files: `data_dir` itself, or its subfolder `fmt.folder`.

    `data_dir` is taken as the folder itself when it is named like it or holds one of its files (a
    missing one is then named by `check_file`), else as its parent. A folder of the python version
    (pickles) is refused with the binary version named, as is a folder that is neither.

    >>> find_folder(CIFAR10, None)
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: dataset 'cifar10' has no default folder: pass --data-dir with the folder of the official binary files (cifar-10-batches-bin, or its parent), unpacked from the 'CIFAR-10 binary version' (cifar-10-binary.tar.gz) you download from https://www.cs.toronto.edu/~kriz/cifar.html; sparsenas downloads nothing
    """
    if data_dir is None:
        raise SparsenasError(
            f"dataset '{fmt.name}' has no default folder: pass --data-dir with the folder of the official binary files "
            f"({fmt.folder}, or its parent), unpacked from the '{fmt.title} binary version' ({fmt.archive}) you download "
            f"from {URL}; sparsenas downloads nothing"
        )
    d = Path(data_dir)
    if not d.is_dir():
        what = "is a file, not a directory" if d.exists() else "does not exist"
        raise SparsenasError(
            f"data directory '{d}' {what}; pass --data-dir with the {fmt.title} binary files ({fmt.folder}, or its parent), "
            f"from the '{fmt.title} binary version' at {URL}"
        )
    if d.name == fmt.folder or any((d / f).exists() for f in fmt.files):
        return d
    if (d / fmt.folder).is_dir():
        return d / fmt.folder
    if d.name == fmt.python_folder or (d / fmt.python_folder).is_dir() or any((d / f).is_file() for f in fmt.python_files):
        raise SparsenasError(
            f"'{d}' holds the python version of {fmt.title} ({fmt.python_folder}: pickles), which sparsenas does not read "
            f"(unpickling runs code); download the '{fmt.title} binary version' ({fmt.archive}) from {URL}, unpack it and "
            f"pass its {fmt.folder} folder as --data-dir"
        )
    other = next(o for o in (CIFAR10, CIFAR100) if o is not fmt)
    hint = ""
    if d.name == other.folder or (d / other.folder).is_dir() or any((d / f).exists() for f in other.files):
        hint = f" ('{d}' holds {other.title}: use --dataset {other.name})"
    raise SparsenasError(
        f"'{d}' holds neither the {fmt.title} binary files ({', '.join(fmt.files)}) nor a {fmt.folder} folder{hint}; "
        f"point --data-dir at that folder (or its parent), unpacked from the '{fmt.title} binary version' ({fmt.archive}) at {URL}"
    )


def check_file(fmt: CifarFormat, path: Path, records: int) -> None:
    """Refuse a missing file, or one whose size is not the official `records` whole records, in one line.

    Only the size is read, so every file is checked before any is read.
    """
    expected = records * fmt.record
    if not path.is_file():
        raise SparsenasError(f"'{path.parent}' has no {path.name} (one of {', '.join(fmt.files)}); {fmt.fix()}")
    size = path.stat().st_size
    official = f"the official file holds {records:,} records of {fmt.record:,} bytes ({expected:,} bytes)"
    if size == 0:
        raise SparsenasError(f"'{path}' is empty (0 bytes) but {official}; {fmt.fix()}")
    if size % fmt.record:
        raise SparsenasError(
            f"'{path}' holds {size:,} bytes, not a whole number of {fmt.record:,}-byte records (truncated or corrupt); "
            f"{official}: {fmt.fix()}"
        )
    if size != expected:
        raise SparsenasError(f"'{path}' holds {size // fmt.record:,} records but {official}: a truncated or wrong file; {fmt.fix()}")


def read_records(fmt: CifarFormat, path: Path, records: int, out: np.ndarray) -> None:
    """Read `path` (already checked by `check_file`) into `out` (records, record bytes) and check its label bytes."""
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise SparsenasError(f"cannot read '{path}' ({e}); {fmt.fix()}") from None
    if raw.size != out.size:  # changed since check_file looked
        raise SparsenasError(f"'{path}' holds {raw.size:,} bytes, not {out.size:,}, when read; {fmt.fix()}")
    out[:] = raw.reshape(out.shape)
    for j, (what, top) in enumerate(fmt.labels):
        bad = out[:, j] > top  # unsigned bytes: nothing below 0
        if bool(bad.any()):
            i = int(bad.argmax())
            more = int(bad.sum()) - 1
            also = f" (and {more:,} more)" if more else ""
            raise SparsenasError(
                f"'{path}': record {i:,} (counting from 0) has {what} {int(out[i, j])}{also}, but {fmt.title} {what}s run "
                f"from 0 to {top}: a corrupt file or not {fmt.title}; {fmt.fix()}"
            )


def to_tensors(fmt: CifarFormat, raw: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Records (N, record bytes) as images float32 (N, 3, 32, 32) in [0, 1] and class labels int64 (N,).

    The pixels are a strided view of the records, converted to float in one pass into one new tensor.

    >>> rec = np.zeros((1, CIFAR10.record), np.uint8)
    >>> rec[0, 0], rec[0, 1 + 1024 + 32 * 2 + 5] = 7, 255  # label 7; green plane, row 2, column 5
    >>> x, y = to_tensors(CIFAR10, rec)
    >>> tuple(x.shape), y.tolist(), x.nonzero().tolist(), float(x.max())
    ((1, 3, 32, 32), [7], [[0, 1, 2, 5]], 1.0)
    """
    n_labels = len(fmt.labels)
    pixels = raw[:, n_labels:].reshape(len(raw), 3, 32, 32)  # a view: planes R, G, B of 32 rows of 32
    x = torch.empty(pixels.shape, dtype=torch.float32)
    x.copy_(torch.from_numpy(pixels)).div_(255.0)
    y = torch.from_numpy(raw[:, n_labels - 1].astype(np.int64))  # the last label byte: CIFAR-100's fine label
    return x, y


def load_cifar(fmt: CifarFormat, data_dir: str | None) -> Dataset:
    """Load `fmt`'s binary files from `data_dir` (the folder or its parent) into a `Dataset`."""
    folder = find_folder(fmt, data_dir)
    for f, n in (*fmt.train, fmt.test):  # sizes first: a broken test file is named before 150 MB are read
        check_file(fmt, folder / f, n)
    sources = [folder / f for f, _ in (*fmt.train, fmt.test)]
    return cached_dataset(fmt.name, sources, {"n_val": N_VAL}, lambda: _decode(fmt, folder))


def _decode(fmt: CifarFormat, folder: Path) -> Dataset:
    def read(files: tuple[tuple[str, int], ...]) -> np.ndarray:
        raw = np.empty((sum(n for _, n in files), fmt.record), dtype=np.uint8)
        start = 0
        for f, n in files:
            read_records(fmt, folder / f, n, raw[start : start + n])
            start += n
        return raw

    # every file is read and its labels checked before any float is made: a bad test file costs no conversion
    raw_train, raw_test = read(fmt.train), read((fmt.test,))
    x_train, y_train = to_tensors(fmt, raw_train)
    x_test, y_test = to_tensors(fmt, raw_test)
    del raw_train, raw_test  # 184 MB of bytes, no longer needed while the splits are made
    return split_and_normalize(
        fmt.name,
        x_train,
        y_train,
        x_test,
        y_test,
        n_val=N_VAL,
        num_classes=fmt.num_classes,
        source=f"the {fmt.title} binary files in '{folder}' (or download them again)",
        per_channel=True,
    )


@DATASETS.register("cifar10", help="CIFAR-10 binary version from --data-dir (50k train incl. 5k validation, 10k test; 3x32x32, 10 classes)")
def load_cifar10(data_dir: str | None = None) -> Dataset:
    return load_cifar(CIFAR10, data_dir)


@DATASETS.register(
    "cifar100", help="CIFAR-100 binary version from --data-dir (50k train incl. 5k validation, 10k test; 3x32x32, 100 fine classes)"
)
def load_cifar100(data_dir: str | None = None) -> Dataset:
    return load_cifar(CIFAR100, data_dir)
