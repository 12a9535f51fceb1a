"""The run store's file and tables: where the SQLite file lives, what tables it holds, and opening it
safely (a new or empty run directory only; never someone else's folder or SQLite file).

`sqlite.Store` reads and writes the rows; the schema is here so the tables read in one place.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import SparsenasError

DB_NAME = "sparsenas.db"
SCHEMA_VERSION = 1

SCHEMA = """
create table if not exists meta (name text primary key, value text not null);
create table if not exists trials (
    key text primary key,
    finder text not null,
    sparsity real not null,
    seed integer not null,
    status text not null,
    record text not null          -- the TrialRecord as JSON, curve excluded
);
create table if not exists masks (
    key text primary key references trials(key),
    bits blob not null            -- a weight trial's mask, packed (masks.pack_weight_mask)
);
create table if not exists weights (
    key text primary key references trials(key),
    state blob not null           -- the trained sub-network's state dict (store.weights.pack_weights)
);
create table if not exists exports (
    key text not null references trials(key),
    path text not null,           -- where `sparsenas export` wrote the module
    result text not null,         -- JSON: output check and latency (export.ExportResult)
    primary key (key, path)
);
create table if not exists superseded (
    key text primary key references trials(key),
    by_key text not null          -- the key that replaced it: same finder, sparsity, seed and arm, newer code
);
create table if not exists curves (
    key text not null references trials(key),
    epoch integer not null,
    train_loss real, val_loss real, val_acc real, test_acc real,
    primary key (key, epoch)
);
"""


def open_db(run_dir: Path, create: bool) -> sqlite3.Connection:
    """Connect to `run_dir`'s store file, creating the directory and the tables when `create`;
    raises `SparsenasError` (one line) where that would touch something that is not a sparsenas run.

    >>> import tempfile; db = open_db(Path(tempfile.mkdtemp()) / "run", create=True)
    >>> sorted(r[0] for r in db.execute("select name from sqlite_master where type = 'table'"))
    ['curves', 'exports', 'masks', 'meta', 'superseded', 'trials', 'weights']
    """
    path = run_dir / DB_NAME
    if not path.exists():
        if not create:
            raise SparsenasError(f"no sparsenas run in '{run_dir}' (missing {DB_NAME}); pass the --out directory of a 'sparsenas run'")
        if run_dir.exists() and not run_dir.is_dir():
            raise SparsenasError(f"'{run_dir}' is a file, not a directory; pass a directory to --out")
        if run_dir.is_dir() and any(run_dir.iterdir()):
            # the report would overwrite report.md & co.: never write into someone's folder
            raise SparsenasError(f"'{run_dir}' holds other files but no sparsenas run; pass a new or empty --out directory")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SparsenasError(f"cannot create run directory '{run_dir}' ({e.strerror}); pass another --out") from None
    try:
        db = sqlite3.connect(path, timeout=30.0)
        # FULL sync: a trial the store said it wrote survives a power cut, not just kill -9.
        db.execute("pragma synchronous = full")
        tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
        if (tables or not create) and not {"meta", "trials", "curves"} <= tables:
            # an SQLite file of something else (or an empty one): never write our tables into it
            raise SparsenasError(f"'{path}' is not a sparsenas store (it lacks the sparsenas tables); pass another --out directory")
        if create:
            # one transaction: a kill -9 while the tables are made leaves all of them or none (one at
            # a time, a kill between two left a store the resumed run refused as "not a sparsenas store")
            db.executescript(f"begin;\n{SCHEMA}commit;\n")
            # fail now, not after the first trial has trained, if the store cannot be written
            db.execute("begin immediate")
            db.execute("rollback")
    except sqlite3.OperationalError as e:
        raise SparsenasError(f"cannot write to '{path}' ({e}); check its permissions or pass another --out") from None
    except sqlite3.DatabaseError as e:
        raise SparsenasError(f"'{path}' is not a readable sparsenas store ({e}); pass another --out directory") from None
    return db
