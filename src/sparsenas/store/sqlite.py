"""One SQLite file per run directory: the run's spec, and every finished trial with its curve.

A trial is written in one transaction (its row and its curve together), keyed by the hash of its
canonical spec, so a process killed at any moment leaves either the whole trial or none of it, and a
re-run skips what is done. The file is plain SQLite: ``sqlite3 runs/x/sparsenas.db 'select * from
trials'`` works.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from ..errors import SparsenasError
from .records import EpochRecord, SearchCost, TrialRecord

DB_NAME = "sparsenas.db"
SCHEMA_VERSION = 1

_SCHEMA = """
create table if not exists meta (name text primary key, value text not null);
create table if not exists trials (
    key text primary key,
    finder text not null,
    sparsity real not null,
    seed integer not null,
    status text not null,
    record text not null          -- the TrialRecord as JSON, curve excluded
);
create table if not exists curves (
    key text not null references trials(key),
    epoch integer not null,
    train_loss real, val_loss real, val_acc real, test_acc real,
    primary key (key, epoch)
);
"""


class Store:
    """The run directory's SQLite store.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> s = Store(d); s.set_spec({"dataset": "digits"}); s.spec()
    {'dataset': 'digits'}
    """

    def __init__(self, run_dir: str | Path, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        if not self.path.exists():
            if not create:
                raise SparsenasError(
                    f"no sparsenas run in '{self.run_dir}' (missing {DB_NAME}); "
                    "pass the --out directory of a 'sparsenas run'"
                )
            if self.run_dir.exists() and not self.run_dir.is_dir():
                raise SparsenasError(f"'{self.run_dir}' is a file, not a directory; pass a directory to --out")
            self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0)
            # FULL sync: a trial the store said it wrote survives a power cut, not just kill -9.
            self._db.execute("pragma synchronous = full")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise SparsenasError(
                f"'{self.path}' is not a readable sparsenas store ({e}); pass another --out directory"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- run spec -------------------------------------------------------------------------------

    def spec(self) -> dict[str, Any] | None:
        row = self._db.execute("select value from meta where name = 'spec'").fetchone()
        return None if row is None else json.loads(row[0])

    def set_spec(self, spec: dict[str, Any]) -> None:
        with self._db:
            self._db.execute(
                "insert or replace into meta values ('spec', ?)", (json.dumps(spec, sort_keys=True),)
            )
            self._db.execute(
                "insert or replace into meta values ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    # -- trials ---------------------------------------------------------------------------------

    def has(self, key: str) -> bool:
        return self._db.execute("select 1 from trials where key = ?", (key,)).fetchone() is not None

    def done_keys(self) -> set[str]:
        return {r[0] for r in self._db.execute("select key from trials")}

    def put(self, trial: TrialRecord) -> None:
        """Write a trial and its curve atomically; writing a key twice is a no-op (idempotent)."""
        record = _to_json(trial)
        with self._db:  # one transaction: the trial row and its curve land together or not at all
            cur = self._db.execute(
                "insert or ignore into trials values (?, ?, ?, ?, ?, ?)",
                (trial.key, trial.finder, trial.sparsity, trial.seed, trial.status, record),
            )
            if cur.rowcount == 0:
                return
            self._db.executemany(
                "insert into curves values (?, ?, ?, ?, ?, ?)",
                [(trial.key, e.epoch, e.train_loss, e.val_loss, e.val_acc, e.test_acc) for e in trial.curve],
            )

    def trials(self) -> list[TrialRecord]:
        """Every stored trial with its curve, ordered by (finder, sparsity, seed)."""
        curves: dict[str, list[EpochRecord]] = {}
        for key, *vals in self._db.execute("select * from curves order by key, epoch"):
            curves.setdefault(key, []).append(EpochRecord(*vals))
        rows = self._db.execute("select key, record from trials order by finder, sparsity, seed")
        return [_from_json(rec, tuple(curves.get(key, []))) for key, rec in rows]

    def __iter__(self) -> Iterator[TrialRecord]:
        return iter(self.trials())

    def __len__(self) -> int:
        return self._db.execute("select count(*) from trials").fetchone()[0]


def _to_json(t: TrialRecord) -> str:
    from dataclasses import asdict

    d = asdict(t)
    d.pop("curve")
    # NaN is not JSON; store it as null and read it back as nan.
    return json.dumps(d, sort_keys=True, default=str, allow_nan=True)


def _from_json(text: str, curve: tuple[EpochRecord, ...]) -> TrialRecord:
    d = json.loads(text)
    d["search"] = SearchCost(**d["search"])
    d["kept_nodes"] = tuple(d["kept_nodes"])
    d["node_mask"] = tuple(tuple(m) for m in d["node_mask"])
    return TrialRecord(**d, curve=curve)
