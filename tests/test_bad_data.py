"""Bad data is refused in one line (exit 2), never a cross_entropy traceback or a "diverged" run.

The check (`check_data`, run by `split_and_normalize`) is the one every dataset passes through: the
IDX folders, digits, mnist5k and a user's `from_tensors` / `from_torch_dataset` alike.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from sparsenas.cli import main
from sparsenas.data import from_tensors, from_torch_dataset, split_and_normalize
from sparsenas.data.fashion_mnist import FILES
from sparsenas.errors import SparsenasError

N_TRAIN, N_TEST = 10010, 20  # fashion-mnist carves 5,000 validation images, so needs > 10,000 train
TYPES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">f4"): 0x0D}


def _idx(arr: np.ndarray) -> bytes:
    """The official IDX layout: 0, 0, type byte, ndim, then big-endian uint32 dims and the data."""
    return bytes([0, 0, TYPES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def _write(d: Path, ytr: np.ndarray, yte: np.ndarray, xtr: np.ndarray | None = None) -> Path:
    """Four IDX files of 4x4 images (tiny: the check runs before any model sees a shape)."""
    rng = np.random.default_rng(0)
    if xtr is None:
        xtr = rng.integers(0, 256, (N_TRAIN, 4, 4)).astype(np.uint8)
    xte = rng.integers(0, 256, (N_TEST, 4, 4)).astype(np.uint8)
    for name, arr in zip(FILES, (xtr, ytr, xte, yte)):
        (d / name).write_bytes(_idx(arr))
    return d


def _labels(n: int) -> np.ndarray:
    return (np.arange(n) % 10).astype(np.int8)  # IDX type 0x09: signed bytes, so -1 is representable


def _with(arr: np.ndarray, i: int, v: int) -> np.ndarray:
    out = arr.copy()
    out[i] = v
    return out


def _float_images(value: float) -> np.ndarray:
    x = np.random.default_rng(1).random((N_TRAIN, 4, 4)).astype(">f4")
    x[5, 2, 3] = value
    x[9, 0, 0] = value
    return x


CASES = [
    ("negative int8 label", lambda d: _write(d, _with(_labels(N_TRAIN), 17, -1), _labels(N_TEST)),
     r"dataset 'fashion-mnist': label -1 at index 17 of the train split; class indices start at 0 and end at 9: "
     r"correct or drop those samples in the IDX files in '.*'"),
    ("label 10", lambda d: _write(d, _labels(N_TRAIN), _with(_labels(N_TEST), 3, 10)),
     r"label 10 at index 3 of the test split; class indices start at 0 and end at 9"),
    ("one class", lambda d: _write(d, np.full(N_TRAIN, 4, np.int8), _labels(N_TEST)),
     r"every label of the train split is 4, so there is nothing to tell apart; a classifier needs at least 2 classes"),
    ("NaN pixel", lambda d: _write(d, _labels(N_TRAIN), _labels(N_TEST), _float_images(np.nan)),
     r"input 5 of the train split holds NaN \(and 1 more\); every input value must be finite"),
    ("inf pixel", lambda d: _write(d, _labels(N_TRAIN), _labels(N_TEST), _float_images(np.inf)),
     r"input 5 of the train split holds an infinite value \(and 1 more\)"),
]


@pytest.mark.parametrize("make,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_idx_data_is_one_line_exit_2(make, message, tmp_path, capsys):
    d = make(tmp_path)
    out = tmp_path / "run"
    code = main(["run", "--dataset", "fashion-mnist", "--data-dir", str(d), "--epochs", "1", "--quiet", "--no-report", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(message, lines[0]), lines[0]


def test_good_idx_data_still_loads(tmp_path):
    from sparsenas.data import load_dataset

    ds = load_dataset("fashion-mnist", data_dir=str(_write(tmp_path, _labels(N_TRAIN), _labels(N_TEST))))
    assert (len(ds.train), len(ds.val), len(ds.test), ds.num_classes) == (N_TRAIN - 5000, 5000, N_TEST, 10)
    assert ds.train.y.dtype == torch.int64 and bool(torch.isfinite(ds.train.x).all())


def _toy(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 3


def test_from_tensors_refuses_bad_labels_and_inputs():
    x, y = _toy()
    bad = y.clone()
    bad[7] = -1
    with pytest.raises(SparsenasError, match=r"^dataset 'mine': label -1 at index 7 of the train split; class indices start at 0 and end at 2"):
        from_tensors("mine", x[:50], bad[:50], x[50:], y[50:])
    # a label past an explicit num_classes: from_tensors names the argument, as it is the likelier fix
    with pytest.raises(SparsenasError, match=r"num_classes=2 but a label is 2; use num_classes=3 or fix the labels"):
        from_tensors("mine", x[:50], y[:50] % 2, x[50:], y[50:] % 3, num_classes=2)
    with pytest.raises(SparsenasError, match="every label of the train split is 0, so there is nothing to tell apart"):
        from_tensors("mine", x[:50], torch.zeros(50, dtype=torch.long), x[50:], y[50:])
    nan_x = x.clone()
    nan_x[55, 0, 1, 1] = float("nan")
    with pytest.raises(SparsenasError, match=r"input 5 of the test split holds NaN; every input value must be finite: replace or drop"):
        from_tensors("mine", nan_x[:50], y[:50], nan_x[50:], y[50:])
    # finite, but the train statistics overflow float32 (or every value is equal): trained as NaN before
    with pytest.raises(SparsenasError, match=r"its train inputs cannot be normalized .* values too large for float32 or all equal; rescale"):
        from_tensors("mine", x[:50].abs() * 1e37 + 1e37, y[:50], x[50:], y[50:])
    with pytest.raises(SparsenasError, match=r"cannot be normalized \(mean 3, std 0\)"):
        from_tensors("mine", torch.full_like(x[:50], 3.0), y[:50], x[50:], y[50:])


def test_from_torch_dataset_and_own_loaders_get_the_same_check():
    x, y = _toy()
    bad = y.clone()
    bad[[3, 40]] = -2
    with pytest.raises(SparsenasError, match=r"label -2 at index 3 of the train split \(and 1 more\); class indices start at 0 and end at 2"):
        from_torch_dataset("mine", TensorDataset(x[:50], bad[:50]), TensorDataset(x[50:], y[50:]))
    # a loader calling split_and_normalize itself (as examples/bring_your_own.py does) is checked too
    inf_x = x.clone()
    inf_x[12] = float("inf")
    with pytest.raises(SparsenasError, match="input 12 of the train split holds an infinite value"):
        split_and_normalize("mine", inf_x[:50], y[:50], x[50:], y[50:], n_val=5, num_classes=3)


def test_every_error_is_one_line():
    x, y = _toy()
    bad = y.clone()
    bad[:10] = -3
    with pytest.raises(SparsenasError) as e:
        from_tensors("mine", x[:50], bad[:50], x[50:], y[50:])
    assert "\n" not in str(e.value) and "(and 9 more)" in str(e.value)
