"""One `sparsenas run` per run directory at a time.

Two processes pointed at one ``--out`` would each plan the same pending trials and train every one
of them twice (the store keeps one copy, but the work and the session log are doubled). The run
holds an exclusive `flock` on a lock file beside the store for as long as it plans and trains; a
second run is refused at once, in one line, with the first one's pid and host. The kernel drops the
lock when its holder exits, however it exits (kill -9 included), so a stale lock cannot exist.
Readers (report, export, `load_run`) take no lock: SQLite serializes their reads with the writer.
"""

from __future__ import annotations

import fcntl
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SparsenasError

LOCK_NAME = ".sparsenas.lock"


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold `run_dir` for this process, or raise `SparsenasError` if another run holds it.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> with run_lock(d):
    ...     with run_lock(d): pass
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: ...is in use by another sparsenas run...
    """
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise SparsenasError(f"cannot create '{path}' ({e.strerror}); check the permissions of --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise SparsenasError(
                f"'{run_dir}' is in use by another sparsenas run ({holder}); wait for it to finish "
                "(then the same command resumes and runs what is left) or pass another --out"
            ) from None
        # who holds it, for the message above; written after locking, so only the holder writes
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {platform.node()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
