"""Decoded datasets kept on disk: a run maps finished tensors instead of decoding files again.

Reading Fashion-MNIST's four gzipped IDX files, converting, splitting and normalizing took 0.8 s of
every run, and fingerprinting the result (what a run directory is bound to) another 0.25 s; a run of
32 one-epoch controls trains in 2-3 s. The cache keeps the finished `Dataset` and its fingerprint,
keyed by the SHA-256 of the source files' bytes (0.04 s for Fashion-MNIST), the loader's parameters,
the code that decodes them (every file of this package), and what torch's float sums in the
normalization depend on: its version, the CPU's vector instructions and the thread count. A cached
dataset is the very tensors this process's loader would make, so no trial's numbers depend on
whether the cache was warm, or which machine sharing a home folder warmed it.

Where: `$SPARSENAS_CACHE`, else `$XDG_CACHE_HOME/sparsenas`, else `~/.cache/sparsenas`;
`SPARSENAS_CACHE=off` turns it off. A folder that cannot be written is passed over (the data is then
decoded every time); a file that cannot be read back is decoded again and replaced. At most `KEEP`
entries per dataset are kept (Fashion-MNIST's is 220 MB), the most recently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..cachedir import cache_dir
from .base import Dataset, Split, fingerprint

FORMAT = 1  # bump when what a cache file holds changes (the decoding code is in the key itself)
KEEP = 3  # entries per dataset name
STALE_TMP_SECONDS = 3600  # a half-written file this old was left by a writer that was killed
_SPLITS = ("train", "val", "test")
_CODE = Path(__file__).parent  # the data package: its loaders, the IDX and CIFAR readers, the normalization


def _code_hash() -> bytes:
    h = hashlib.sha256()
    for path in sorted(_CODE.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.digest()


def source_key(name: str, sources: Sequence[Path], params: dict[str, Any]) -> str:
    """16 hex digits naming a decoded dataset: its sources' bytes, the loader's parameters, the
    decoding code, and torch's version, vector instructions and threads (its sums round by them).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "a"; _ = p.write_bytes(b"1")
    >>> source_key("x", [p], {"n_val": 5}) == source_key("x", [p], {"n_val": 5}) != source_key("x", [p], {"n_val": 6})
    True
    """
    arithmetic = [torch.__version__, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads()]
    h = hashlib.sha256(json.dumps([FORMAT, name, arithmetic, params], sort_keys=True).encode())
    h.update(_code_hash())
    for path in sources:
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def cached_dataset(name: str, sources: Sequence[Path], params: dict[str, Any], build: Callable[[], Dataset]) -> Dataset:
    """`build()`'s dataset, read from the cache when these `sources` and `params` were decoded before.

    The returned dataset's tensors map the cache file (copy-on-write: nothing writes back to it), and
    it carries its fingerprint, so `fingerprint` need not hash 200 MB again.

    >>> import tempfile; os.environ["SPARSENAS_CACHE"] = tempfile.mkdtemp()
    >>> src = Path(tempfile.mkdtemp()) / "f"; _ = src.write_bytes(b"v1")
    >>> from sparsenas.data import load_dataset
    >>> a = cached_dataset("toy", [src], {}, lambda: load_dataset("digits", limit=20))
    >>> b = cached_dataset("toy", [src], {}, lambda: 1 / 0)  # a hit: build is not called
    >>> torch.equal(a.train.x, b.train.x), fingerprint(a) == fingerprint(b)
    (True, True)
    >>> del os.environ["SPARSENAS_CACHE"]
    """
    where = cache_dir()
    if where is None:
        return build()
    try:
        path = where / f"{name}-{source_key(name, sources, params)}.pt"
    except OSError:
        return build()  # an unreadable source: the loader names it, with its fix
    found = _read(path)
    if found is not None:
        return found
    ds = build()
    ds = Dataset(ds.name, ds.train, ds.val, ds.test, ds.num_classes, digest=fingerprint(ds))
    _write(path, ds)
    return ds


def _read(path: Path) -> Dataset | None:
    try:
        held = torch.load(path, mmap=True, weights_only=True)
        train, val, test = (Split(held[f"{s}_x"], held[f"{s}_y"]) for s in _SPLITS)
        ds = Dataset(str(held["name"]), train, val, test, int(held["num_classes"]), digest=str(held["digest"]))
    except Exception:  # noqa: BLE001 (absent, torn or foreign: a miss, decoded again and replaced)
        return None
    try:
        os.utime(path)  # most recently used: the last to be evicted
    except OSError:
        pass  # a read-only cache (a shared one) serves all the same
    return ds


def _write(path: Path, ds: Dataset) -> None:
    held: dict[str, Any] = {"name": ds.name, "num_classes": ds.num_classes, "digest": ds.digest}
    for s in _SPLITS:
        split = getattr(ds, s)
        held[f"{s}_x"], held[f"{s}_y"] = split.x.contiguous(), split.y.contiguous()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(held, f)
            os.replace(tmp, path)  # whole or absent: a reader never sees half a file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _evict(path.parent, ds.name)
    except Exception:  # noqa: BLE001 (read-only, full, or a writer's error: decoded each run, as without a cache)
        return


def _evict(folder: Path, name: str) -> None:
    """Keep the `KEEP` most recently used entries of dataset `name`; drop files killed writers left."""
    now = time.time()
    for tmp in folder.glob(".tmp-*.pt"):
        if tmp.stat().st_mtime < now - STALE_TMP_SECONDS:
            tmp.unlink(missing_ok=True)
    mine = [p for p in folder.glob(f"{name}-*.pt") if p.stem.rsplit("-", 1)[0] == name]  # not "fashion" for "fashion-mnist"
    entries = sorted(mine, key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)
