"""CIFAR-10 and CIFAR-100 read from the official binary files: layout, splits, per-channel
normalization, and every broken file or folder refused in one line naming it and the fix.

The files are written once per session in the exact official layout and sizes (CIFAR-10: five
10,000-record train batches and a test batch of 3,073-byte records; CIFAR-100: train.bin of 50,000
and test.bin of 10,000 records of 3,074 bytes), with random pixels and labels. The layout is spelled
out here from the format's description, not imported from the loader, so the loader is checked
against the format rather than against itself. The channels get different ranges (R 0-255, G 0-63,
B 128-255), so only a per-channel normalization brings each to mean 0 and std 1. Broken folders
link to the good files and replace one, so no test copies 180 MB.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsenas.cli import main
from sparsenas.data import load_dataset
from sparsenas.errors import SparsenasError

URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
C10, C100 = "cifar-10-batches-bin", "cifar-100-binary"
C10_FILES = {**{f"data_batch_{i}.bin": 10_000 for i in range(1, 6)}, "test_batch.bin": 10_000}
C100_FILES = {"train.bin": 50_000, "test.bin": 10_000}
PLANE = 32 * 32
# a known image: each plane its own pattern, none the transpose or the mirror of another
ROW, COL = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
PATTERN = np.stack([ROW * 7 + COL, COL * 7 + ROW, 255 - (ROW * 7 + COL)]).astype(np.uint8)  # (3, 32, 32): R, G, B
PATTERN_AT = 42  # its record in each test file


@dataclass(frozen=True)
class Written:
    """What the fixture wrote: the root (the parent of both folders) and each file's records."""

    root: Path
    records: dict[str, np.ndarray]  # "cifar-10-batches-bin/test_batch.bin" -> (N, record bytes) uint8
    seconds: float

    def folder(self, name: str) -> Path:
        return self.root / name

    def train(self, folder: str) -> list[np.ndarray]:
        """The train files' records, in the official order (concatenated, they are the train split's 50,000)."""
        return [self.records[f"{folder}/{f}"] for f in (C10_FILES if folder == C10 else C100_FILES) if "test" not in f]

    def test(self, folder: str) -> np.ndarray:
        return self.records[f"{folder}/{'test_batch.bin' if folder == C10 else 'test.bin'}"]


def _records(rng: np.random.Generator, n: int, labels: list[tuple[int, int]]) -> np.ndarray:
    """`n` official records: one byte per (column) label drawn below its bound, then R, G, B planes."""
    k = len(labels)
    size = n * (k + 3 * PLANE)
    # the generator's raw 64-bit words as bytes: uniform, and ~3x faster than integers(0, 256, uint8)
    rec = rng.bit_generator.random_raw(-(-size // 8)).view(np.uint8)[:size].reshape(n, k + 3 * PLANE)
    for j, bound in labels:
        rec[:, j] = rng.integers(0, bound, n, dtype=np.uint8)
    rec[:, k + PLANE : k + 2 * PLANE] &= 63  # G: 0..63
    rec[:, k + 2 * PLANE :] |= 128  # B: 128..255
    return rec


@pytest.fixture(scope="session")
def written(tmp_path_factory) -> Written:
    """Both datasets in the official binary layout and sizes (~370 MB), under one parent folder."""
    root = tmp_path_factory.mktemp("cifar")
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    records: dict[str, np.ndarray] = {}
    for folder, files, labels in ((C10, C10_FILES, [(0, 10)]), (C100, C100_FILES, [(0, 20), (1, 100)])):
        (root / folder).mkdir()
        for name, n in files.items():
            rec = _records(rng, n, labels)
            if "test" in name:
                rec[PATTERN_AT, len(labels) :] = PATTERN.reshape(-1)
                rec[PATTERN_AT, len(labels) - 1] = 3
            rec.tofile(root / folder / name)
            records[f"{folder}/{name}"] = rec
    return Written(root, records, time.perf_counter() - start)


@pytest.fixture(scope="module")
def cifar10(written):
    return load_dataset("cifar10", data_dir=str(written.root))  # the parent of cifar-10-batches-bin


@pytest.fixture(scope="module")
def cifar100(written):
    return load_dataset("cifar100", data_dir=str(written.folder(C100)))  # the folder itself


def _split_rule(n: int = 50_000, n_val: int = 5_000) -> tuple[torch.Tensor, torch.Tensor]:
    """The documented fixed rule: a permutation from a generator seeded 0; its first n_val are validation."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def test_the_fixture_writes_the_official_sizes_quickly(written):
    sizes = {p.relative_to(written.root).as_posix(): p.stat().st_size for p in written.root.glob("*/*")}
    assert sizes == {**{f"{C10}/{f}": n * 3073 for f, n in C10_FILES.items()}, **{f"{C100}/{f}": n * 3074 for f, n in C100_FILES.items()}}
    print(f"fixture wrote {sum(sizes.values()) / 1e6:.0f} MB in {written.seconds:.2f} s")
    assert written.seconds < 10


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_shapes_classes_splits_and_labels(name, classes, written, request):
    ds = request.getfixturevalue(name)
    folder = C10 if name == "cifar10" else C100
    assert (len(ds.train), len(ds.val), len(ds.test)) == (45_000, 5_000, 10_000)
    assert ds.input_shape == (3, 32, 32) and ds.num_classes == classes
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    assert all(s.x.is_contiguous() for s in (ds.train, ds.val, ds.test))
    # the labels as written (CIFAR-100: the fine byte, the record's second), split by the fixed rule
    label = 0 if name == "cifar10" else 1
    y = torch.from_numpy(np.concatenate([r[:, label] for r in written.train(folder)]).astype(np.int64))
    train_idx, val_idx = _split_rule()
    assert torch.equal(ds.train.y, y[train_idx]) and torch.equal(ds.val.y, y[val_idx])
    assert ds.test.y.tolist() == written.test(folder)[:, label].tolist()
    assert int(ds.train.y.max()) == classes - 1


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_normalized_per_channel_with_train_statistics(name, written, request):
    ds = request.getfixturevalue(name)
    std, mean = torch.std_mean(ds.train.x, dim=(0, 2, 3))
    assert mean.abs().max() < 1e-4  # each channel, though written with ranges 0-255, 0-63, 128-255
    assert (std - 1).abs().max() < 1e-4
    # every split is normalized with the train split's statistics: recompute them exactly from the
    # written bytes (a histogram of byte values per channel, so no float copy of 45,000 images)
    folder, k = (C10, 1) if name == "cifar10" else (C100, 2)
    train_idx, _ = _split_rule()
    in_train = np.zeros(50_000, bool)
    in_train[train_idx.numpy()] = True
    counts, start = np.zeros((3, 256), np.int64), 0
    for rec in written.train(folder):
        kept = rec[in_train[start : start + len(rec)], k:]
        start += len(rec)
        for c in range(3):
            counts[c] += np.bincount(kept[:, c * PLANE : (c + 1) * PLANE].ravel(), minlength=256)
    v, n = np.arange(256) / 255.0, counts.sum(1)
    mean = (counts * v).sum(1) / n
    std = np.sqrt(((counts * v**2).sum(1) - n * mean**2) / (n - 1))
    first = written.test(folder)[:500, k:].reshape(-1, 3, 32, 32) / 255.0
    expected = (first - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(ds.test.x[:500].double().numpy(), expected, atol=1e-4)
    assert std.max() / std.min() > 3  # the channels were written with different spreads


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_pixel_layout_red_green_blue_planes_row_major(name, request):
    ds = request.getfixturevalue(name)
    img = ds.test.x[PATTERN_AT].double()
    assert int(ds.test.y[PATTERN_AT]) == 3
    for c in range(3):
        v, p = img[c].numpy(), PATTERN[c].astype(np.float64)
        # normalization is affine with a positive scale per channel: v = a * p + b exactly, a > 0
        a = (v[31, 31] - v[0, 0]) / (p[31, 31] - p[0, 0])
        assert a > 0
        np.testing.assert_allclose(v, a * p + (v[0, 0] - a * p[0, 0]), atol=1e-4, err_msg=f"channel {c}")


def test_folder_or_its_parent(written):
    # the two loads through load_dataset (the cifar10/cifar100 fixtures) take the parent and the
    # folder; the folder is found either way for both (a third full load would only repeat that)
    from sparsenas.data.cifar import CIFAR10, CIFAR100, find_folder

    for fmt, folder in ((CIFAR10, C10), (CIFAR100, C100)):
        assert find_folder(fmt, str(written.folder(folder))) == written.folder(folder)
        assert find_folder(fmt, str(written.root)) == written.folder(folder)


# -- broken files and folders: one line naming the file and the fix ----------------------------------


def _folder_with(tmp_path: Path, written: Written, folder: str, name: str, data: bytes | None) -> Path:
    """A copy of `folder` (links to the good files) with file `name` replaced by `data` (None: missing)."""
    d = tmp_path / folder
    d.mkdir()
    for f in C10_FILES if folder == C10 else C100_FILES:
        if f != name:
            (d / f).symlink_to(written.folder(folder) / f)
    if data is not None:
        (d / name).write_bytes(data)
    return d


def _good(written: Written, folder: str, name: str) -> np.ndarray:
    return written.records[f"{folder}/{name}"].copy()


def _with_label(rec: np.ndarray, column: int, at: list[int], value: int) -> bytes:
    rec[at, column] = value
    return rec.tobytes()


FIX10 = re.escape(f"download the 'CIFAR-10 binary version' (cifar-10-binary.tar.gz) from {URL} again and unpack it")
FIX100 = re.escape(f"download the 'CIFAR-100 binary version' (cifar-100-binary.tar.gz) from {URL} again and unpack it")
BROKEN = [
    ("truncated", "cifar10", C10, "data_batch_3.bin", lambda w: _good(w, C10, "data_batch_3.bin").tobytes()[:-100],
     r"data_batch_3.bin' holds 30,729,900 bytes, not a whole number of 3,073-byte records \(truncated or corrupt\); "
     r"the official file holds 10,000 records of 3,073 bytes \(30,730,000 bytes\): " + FIX10),
    ("truncated-100", "cifar100", C100, "test.bin", lambda w: _good(w, C100, "test.bin").tobytes()[:-1],
     r"test.bin' holds 30,739,999 bytes, not a whole number of 3,074-byte records"),
    ("wrong count", "cifar10", C10, "test_batch.bin", lambda w: _good(w, C10, "test_batch.bin")[:9_999].tobytes(),
     r"test_batch.bin' holds 9,999 records but the official file holds 10,000 records of 3,073 bytes \(30,730,000 bytes\): "
     r"a truncated or wrong file; " + FIX10),
    ("test as train-100", "cifar100", C100, "train.bin", lambda w: _good(w, C100, "test.bin").tobytes(),
     r"train.bin' holds 10,000 records but the official file holds 50,000 records of 3,074 bytes \(153,700,000 bytes\)"),
    ("bad label", "cifar10", C10, "test_batch.bin", lambda w: _with_label(_good(w, C10, "test_batch.bin"), 0, [17, 30], 10),
     r"test_batch.bin': record 17 \(counting from 0\) has label 10 \(and 1 more\), but CIFAR-10 labels run from 0 to 9: "
     r"a corrupt file or not CIFAR-10; " + FIX10),
    ("bad coarse label", "cifar100", C100, "test.bin", lambda w: _with_label(_good(w, C100, "test.bin"), 0, [5], 20),
     r"test.bin': record 5 \(counting from 0\) has coarse label 20, but CIFAR-100 coarse labels run from 0 to 19"),
    ("bad fine label", "cifar100", C100, "test.bin", lambda w: _with_label(_good(w, C100, "test.bin"), 1, [9_999], 255),
     r"test.bin': record 9,999 \(counting from 0\) has fine label 255, but CIFAR-100 fine labels run from 0 to 99: "
     r"a corrupt file or not CIFAR-100; " + FIX100),
    ("missing", "cifar10", C10, "data_batch_4.bin", lambda w: None,
     r"cifar-10-batches-bin' has no data_batch_4.bin \(one of data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, "
     r"data_batch_4.bin, data_batch_5.bin, test_batch.bin\); " + FIX10),
    ("missing-100", "cifar100", C100, "test.bin", lambda w: None, r"cifar-100-binary' has no test.bin \(one of train.bin, test.bin\)"),
    ("empty", "cifar10", C10, "data_batch_1.bin", lambda w: b"",
     r"data_batch_1.bin' is empty \(0 bytes\) but the official file holds 10,000 records of 3,073 bytes \(30,730,000 bytes\); " + FIX10),
]


@pytest.mark.parametrize("dataset,folder,name,data,message", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_a_broken_file_is_one_line_naming_it(dataset, folder, name, data, message, tmp_path, written):
    d = _folder_with(tmp_path, written, folder, name, data(written))
    with pytest.raises(SparsenasError) as e:
        load_dataset(dataset, data_dir=str(d))
    text = str(e.value)
    assert "\n" not in text and str(d) in text
    assert re.search(message, text), text


def test_the_python_version_is_refused_with_the_binary_one_named(tmp_path):
    for dataset, py, files, title, archive, binary in (
        ("cifar10", "cifar-10-batches-py", ("data_batch_1", "test_batch", "batches.meta"), "CIFAR-10", "cifar-10-binary.tar.gz", C10),
        ("cifar100", "cifar-100-python", ("train", "test", "meta"), "CIFAR-100", "cifar-100-binary.tar.gz", C100),
    ):
        d = tmp_path / dataset / py
        d.mkdir(parents=True)
        for f in files:
            (d / f).write_bytes(b"\x80\x04not unpickled")
        for given in (d, d.parent):  # the folder or its parent
            with pytest.raises(SparsenasError) as e:
                load_dataset(dataset, data_dir=str(given))
            assert str(e.value) == (
                f"'{given}' holds the python version of {title} ({py}: pickles), which sparsenas does not read (unpickling runs "
                f"code); download the '{title} binary version' ({archive}) from {URL}, unpack it and pass its {binary} folder as --data-dir"
            )
        renamed = tmp_path / dataset / "mine"  # recognized by its files too
        shutil.copytree(d, renamed)
        with pytest.raises(SparsenasError, match="holds the python version"):
            load_dataset(dataset, data_dir=str(renamed))


def test_no_wrong_or_missing_folder_is_one_line(tmp_path, written):
    with pytest.raises(SparsenasError) as e:
        load_dataset("cifar10")
    assert str(e.value) == (
        "dataset 'cifar10' has no default folder: pass --data-dir with the folder of the official binary files "
        f"(cifar-10-batches-bin, or its parent), unpacked from the 'CIFAR-10 binary version' (cifar-10-binary.tar.gz) you "
        f"download from {URL}; sparsenas downloads nothing"
    )
    with pytest.raises(SparsenasError, match=r"^dataset 'cifar100' has no default folder: pass --data-dir .*cifar-100-binary"):
        load_dataset("cifar100")
    with pytest.raises(SparsenasError, match=f"data directory '{tmp_path / 'nope'}' does not exist; pass --data-dir"):
        load_dataset("cifar10", data_dir=str(tmp_path / "nope"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(SparsenasError, match="is a file, not a directory"):
        load_dataset("cifar10", data_dir=str(tmp_path / "file"))
    # neither the folder nor its parent: the names looked for are said
    (tmp_path / "empty").mkdir()
    with pytest.raises(SparsenasError) as e:
        load_dataset("cifar10", data_dir=str(tmp_path / "empty"))
    assert str(e.value) == (
        f"'{tmp_path / 'empty'}' holds neither the CIFAR-10 binary files (data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, "
        "data_batch_4.bin, data_batch_5.bin, test_batch.bin) nor a cifar-10-batches-bin folder; point --data-dir at that "
        f"folder (or its parent), unpacked from the 'CIFAR-10 binary version' (cifar-10-binary.tar.gz) at {URL}"
    )
    # the other dataset's folder: said which one to use
    with pytest.raises(SparsenasError, match=r"holds CIFAR-100: use --dataset cifar100\)"):
        load_dataset("cifar10", data_dir=str(written.folder(C100)))
    with pytest.raises(SparsenasError, match=r"holds CIFAR-10: use --dataset cifar10\)"):
        load_dataset("cifar100", data_dir=str(written.folder(C10)))


def test_no_pickle_is_read():
    import sparsenas.data.cifar as cifar

    source = Path(cifar.__file__).read_text()
    assert not re.search(r"^\s*(import|from) pickle|allow_pickle|torch\.load|np\.load\(", source, re.M)


# -- the command line ------------------------------------------------------------------------------


def test_list_shows_both(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  cifar10 +CIFAR-10 binary version from --data-dir .*10 classes\)$", out, re.M)
    assert re.search(r"^  cifar100 +CIFAR-100 binary version from --data-dir .*100 fine classes\)$", out, re.M)


def test_a_cli_run_on_cifar10_and_a_bad_folder(tmp_path, written):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sparsenas", *args], capture_output=True, text=True, timeout=300)

    tiny = ["--dataset", "cifar10", "--model", "mlp", "--widths", "16,8", "--epochs", "1", "--limit", "200", "--seeds", "1",
            "--sparsities", "0.5", "--finders", "dense,random", "--candidates", "2", "--quiet", "--no-report"]
    r = cli("run", *tiny, "--data-dir", str(written.root), "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert "2 trials planned" in r.stdout
    bad = tmp_path / "cifar-10-batches-py"
    bad.mkdir()
    (bad / "data_batch_1").write_bytes(b"\x80\x04")
    r = cli("run", *tiny, "--data-dir", str(bad), "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "holds the python version of CIFAR-10" in lines[0], r.stderr
