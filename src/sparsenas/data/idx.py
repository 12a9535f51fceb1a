"""Reader for the IDX format of MNIST and Fashion-MNIST, gzipped or not, with checks.

A truncated download or a wrong file gives a one-line `SparsenasError` naming the file and the fix,
never a numpy reshape traceback.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import SparsenasError

_DTYPES: dict[int, type[np.generic] | str] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def find_idx(data_dir: Path, stem: str) -> Path:
    """The file `stem` or `stem.gz` in `data_dir` (the IDX names as published).

    >>> find_idx(Path("/usr/share/datasets/fashion-mnist"), "t10k-labels-idx1-ubyte").name  # doctest: +SKIP
    't10k-labels-idx1-ubyte.gz'
    """
    for name in (stem, stem + ".gz"):
        p = data_dir / name
        if p.is_file():
            return p
    raise SparsenasError(
        f"'{data_dir}' has no {stem}[.gz]; point --data-dir at a folder with the four IDX files "
        "(on Debian: apt-get install dataset-fashion-mnist)"
    )


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file into an array of its declared shape.

    >>> read_idx(Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")).shape  # doctest: +SKIP
    (10000,)
    """
    hint = "the file is corrupt or truncated; reinstall or re-copy it (apt-get install --reinstall dataset-fashion-mnist)"
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise SparsenasError(f"cannot read '{path}' ({e}); {hint}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise SparsenasError(f"'{path}' is not an IDX file (bad magic number); {hint}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise SparsenasError(f"'{path}' ends inside its header; {hint}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise SparsenasError(f"'{path}' holds {len(raw) - header} data bytes but its header promises {expected}; {hint}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
