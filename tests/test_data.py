"""Datasets: every registry entry loads with fixed splits; IDX files are read and checked."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsenas.data import DATASETS, batches, load_dataset
from sparsenas.data.base import split_and_normalize
from sparsenas.data.fashion_mnist import FILES, load_idx_dir
from sparsenas.data.idx import read_idx
from sparsenas.errors import SparsenasError

from helpers import FASHION_DIR, needs_fashion, shipped

EXPECTED = {
    "digits": (1257, 180, 360, (1, 8, 8)),
    "mnist5k": (3500, 500, 1000, (1, 28, 28)),
    "fashion-mnist": (55000, 5000, 10000, (1, 28, 28)),
}


@pytest.mark.parametrize("name", shipped(DATASETS))
def test_every_dataset_loads_with_fixed_disjoint_splits(name):
    if name == "fashion-mnist" and not FASHION_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    if name in ("cifar10", "cifar100"):
        pytest.skip("no default folder: tests/test_cifar.py loads it from files written in the official binary format")
    ds = load_dataset(name)
    n_tr, n_val, n_te, shape = EXPECTED[name]
    assert (len(ds.train), len(ds.val), len(ds.test), ds.input_shape) == (n_tr, n_val, n_te, shape)
    assert ds.num_classes == 10 and ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    # normalized with train statistics
    assert abs(ds.train.x.mean().item()) < 1e-4 and abs(ds.train.x.std().item() - 1) < 1e-4
    # fixed: a second load gives the same tensors
    again = load_dataset(name)
    assert torch.equal(ds.val.x, again.val.x) and torch.equal(ds.test.y, again.test.y)
    # validation was carved from train: no image appears in both
    tr = {hash(r.numpy().tobytes()) for r in ds.train.x[:2000]}
    assert not any(hash(r.numpy().tobytes()) in tr for r in ds.val.x)


def test_batches_cover_the_split_once_in_seeded_order(digits_small):
    seen = torch.cat([y for _, y in batches(digits_small.train, 64, torch.Generator().manual_seed(3))])
    assert sorted(seen.tolist()) == sorted(digits_small.train.y.tolist())
    again = torch.cat([y for _, y in batches(digits_small.train, 64, torch.Generator().manual_seed(3))])
    assert torch.equal(seen, again)


def test_limit_must_be_positive():
    with pytest.raises(SparsenasError, match="--limit 0 keeps fewer samples per split than digits has classes"):
        load_dataset("digits", limit=0)


# -- IDX files ------------------------------------------------------------------------------------


def _idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def _write_idx_dir(d: Path, n_train: int = 30, n_test: int = 10, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28)),
        rng.integers(0, 10, n_train),
        rng.integers(0, 256, (n_test, 28, 28)),
        rng.integers(0, 10, n_test),
    ]
    for name, arr in zip(FILES, arrays):
        data = _idx_bytes(arr)
        if gz:
            (d / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (d / name).write_bytes(data)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dir_loads_gzipped_or_not(tmp_path, gz):
    _write_idx_dir(tmp_path, gz=gz)
    ds = load_idx_dir("x", tmp_path, n_val=5)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (25, 5, 10)


def test_idx_roundtrip_values(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(arr))
    assert np.array_equal(read_idx(tmp_path / "a"), arr)


def test_truncated_idx_file_is_named(tmp_path):
    _write_idx_dir(tmp_path, gz=False)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(SparsenasError, match="train-images-idx3-ubyte' holds .* data bytes but its header promises"):
        load_idx_dir("x", tmp_path, n_val=5)


def test_corrupt_gzip_and_bad_magic_are_named(tmp_path):
    _write_idx_dir(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(SparsenasError, match="cannot read .*t10k-labels"):
        load_idx_dir("x", tmp_path, n_val=5)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(SparsenasError, match="bad magic number"):
        load_idx_dir("x", tmp_path, n_val=5)


def test_missing_files_and_directory_are_named(tmp_path):
    with pytest.raises(SparsenasError, match="has no train-images-idx3-ubyte"):
        load_idx_dir("x", tmp_path, n_val=5)
    with pytest.raises(SparsenasError, match="does not exist"):
        load_dataset("fashion-mnist", data_dir=str(tmp_path / "nope"))


def test_mismatched_images_and_labels_are_named(tmp_path):
    _write_idx_dir(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(7)))
    with pytest.raises(SparsenasError, match="do not match"):
        load_idx_dir("x", tmp_path, n_val=5)


@needs_fashion
def test_real_fashion_mnist_labels_are_balanced():
    labels = read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")
    assert np.bincount(labels).tolist() == [1000] * 10


def test_digits_read_without_sklearn_equals_sklearns_loader() -> None:
    """The embedded dataset is read from scikit-learn's CSV without importing scikit-learn (a second
    of start-up); it must be exactly what `sklearn.datasets.load_digits` gives."""
    from sklearn.datasets import load_digits as sk_digits

    from sparsenas.data.digits import _read_digits

    images, target = _read_digits()
    bunch = sk_digits()
    assert np.array_equal(images, bunch.images) and images.dtype == bunch.images.dtype
    assert np.array_equal(target, bunch.target)


def test_normalized_in_place_equals_out_of_place() -> None:
    """split_and_normalize scales its fresh copies in place: the same arithmetic as (x - mean) / std."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (300, 1, 6, 6), generator=g).float() / 255.0
    y = torch.randint(0, 3, (300,), generator=g)
    ds = split_and_normalize("toy", x[:250], y[:250], x[250:], y[250:], n_val=50, num_classes=3)
    perm = torch.randperm(250, generator=torch.Generator().manual_seed(0))
    train_idx, val_idx = perm[50:].sort().values, perm[:50].sort().values
    mean, std = x[:250][train_idx].mean(), x[:250][train_idx].std()
    assert torch.equal(ds.train.x, (x[:250][train_idx] - mean) / std)
    assert torch.equal(ds.val.x, (x[:250][val_idx] - mean) / std)
    assert torch.equal(ds.test.x, (x[250:] - mean) / std)
    assert torch.equal(
        x[250:], torch.randint(0, 256, (300, 1, 6, 6), generator=torch.Generator().manual_seed(0)).float()[250:] / 255.0
    )  # the caller's tensor untouched


# -- the decoded-dataset cache --------------------------------------------------------------------


def _tensors(ds):
    return [t for s in (ds.train, ds.val, ds.test) for t in (s.x, s.y)]


def _cached_idx_dir(tmp_path, monkeypatch) -> Path:
    """A folder of small IDX files, and the cache at tmp_path/cache."""
    monkeypatch.setenv("SPARSENAS_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "idx"
    src.mkdir()
    _write_idx_dir(src, n_train=40)
    return src


def test_cache_gives_the_decoded_tensors_and_their_fingerprint(tmp_path, monkeypatch):
    from sparsenas.data import fingerprint
    from sparsenas.data.base import Dataset

    src = _cached_idx_dir(tmp_path, monkeypatch)
    first = load_idx_dir("toy", src, n_val=5)  # decoded, then kept
    assert len(list((tmp_path / "cache").glob("toy-*.pt"))) == 1
    second = load_idx_dir("toy", src, n_val=5)  # read back
    for a, b in zip(_tensors(first), _tensors(second)):
        assert torch.equal(a, b) and a.dtype == b.dtype and a.shape == b.shape
    # the kept fingerprint is the one the tensors hash to
    fresh = Dataset(second.name, second.train, second.val, second.test, second.num_classes)
    assert fingerprint(second) == fingerprint(fresh) == fingerprint(first)
    monkeypatch.setenv("SPARSENAS_CACHE", "off")
    for a, b in zip(_tensors(load_idx_dir("toy", src, n_val=5)), _tensors(second)):
        assert torch.equal(a, b)


def test_cache_follows_the_files_and_the_loaders_parameters(tmp_path, monkeypatch):
    src = _cached_idx_dir(tmp_path, monkeypatch)
    before = load_idx_dir("toy", src, n_val=5)
    assert len(load_idx_dir("toy", src, n_val=6).val) == 6  # another split: another entry
    # one pixel changed, same size and name: the content decides, not the file's date
    p = src / "train-images-idx3-ubyte.gz"
    arr = read_idx(p).copy()
    arr[0, 0, 0] = (int(arr[0, 0, 0]) + 1) % 256
    p.write_bytes(gzip.compress(_idx_bytes(arr)))
    after = load_idx_dir("toy", src, n_val=5)
    assert not torch.equal(before.train.x, after.train.x) or not torch.equal(before.val.x, after.val.x)
    assert len(list((tmp_path / "cache").glob("toy-*.pt"))) == 3


def test_a_torn_cache_file_is_decoded_again_and_an_unwritable_folder_passed_over(tmp_path, monkeypatch):
    src = _cached_idx_dir(tmp_path, monkeypatch)
    good = load_idx_dir("toy", src, n_val=5)
    (kept,) = (tmp_path / "cache").glob("toy-*.pt")
    kept.write_bytes(kept.read_bytes()[:100])
    again = load_idx_dir("toy", src, n_val=5)
    assert torch.equal(again.train.x, good.train.x)
    assert kept.stat().st_size > 100  # replaced by a whole file
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPARSENAS_CACHE", str(blocker / "cache"))
    assert torch.equal(load_idx_dir("toy", src, n_val=5).train.x, good.train.x)


def test_cache_keeps_a_few_entries_per_dataset(tmp_path, monkeypatch):
    from sparsenas.data import cache

    src = _cached_idx_dir(tmp_path, monkeypatch)
    (tmp_path / "cache").mkdir()
    other = tmp_path / "cache" / "toy-extra-0123456789abcdef.pt"  # another dataset whose name starts alike
    other.write_bytes(b"x")
    for n_val in range(5, 5 + cache.KEEP + 2):
        load_idx_dir("toy", src, n_val=n_val)
    assert len(list((tmp_path / "cache").glob("toy-????????????????.pt"))) == cache.KEEP
    assert other.exists()


def test_cache_key_follows_what_the_normalizations_sums_depend_on(tmp_path, monkeypatch):
    from sparsenas.data import cache

    src = tmp_path / "f"
    src.write_bytes(b"v1")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = cache.source_key("x", [src], {})
        torch.set_num_threads(2)
        two = cache.source_key("x", [src], {})
    finally:
        torch.set_num_threads(threads)
    assert one != two  # float sums split across threads round otherwise
    before = cache.source_key("x", [src], {})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert cache.source_key("x", [src], {}) != before
    monkeypatch.undo()
    monkeypatch.setattr(cache, "_code_hash", lambda: b"another loader")
    assert cache.source_key("x", [src], {}) != before


def test_a_read_only_cache_still_serves_and_stale_half_files_are_swept(tmp_path, monkeypatch):
    import os
    import time

    from sparsenas.data import cache

    src = _cached_idx_dir(tmp_path, monkeypatch)
    first = load_idx_dir("toy", src, n_val=5)

    def refuse(*a, **k):
        raise PermissionError("read-only")

    monkeypatch.setattr(os, "utime", refuse)
    monkeypatch.setattr(cache, "_write", lambda *a: pytest.fail("a hit must not decode and write again"))
    assert torch.equal(load_idx_dir("toy", src, n_val=5).train.x, first.train.x)
    monkeypatch.undo()
    monkeypatch.setenv("SPARSENAS_CACHE", str(tmp_path / "cache"))
    old, fresh = tmp_path / "cache" / ".tmp-killed.pt", tmp_path / "cache" / ".tmp-writing.pt"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    hour_ago = time.time() - cache.STALE_TMP_SECONDS - 10
    os.utime(old, (hour_ago, hour_ago))
    load_idx_dir("toy", src, n_val=6)  # a new entry is written, and the folder swept
    assert not old.exists() and fresh.exists()
