"""One SQLite file per run directory: the run's spec, and every finished trial with its curve.

A trial is written in one transaction (its row and its curve together), keyed by the hash of its
canonical spec, so a process killed at any moment leaves either the whole trial or none of it, and a
re-run skips what is done. The file is plain SQLite: ``sqlite3 runs/x/sparsenas.db 'select * from
trials'`` works. The file's tables, and how it is opened safely, are in `schema.py`.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import SparsenasError
from .records import EpochRecord, TrialRecord, epoch_from_row, identity, record_from_json, record_to_json
from .schema import DB_NAME, SCHEMA, SCHEMA_VERSION, open_db

# DB_NAME and SCHEMA_VERSION live in schema.py with the tables; importable from here as before
__all__ = ["DB_NAME", "SCHEMA_VERSION", "Store"]


class Store:
    """The run directory's SQLite store.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> s = Store(d); s.set_spec({"dataset": "digits"}); s.spec()
    {'dataset': 'digits'}
    """

    def __init__(self, run_dir: str | Path, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self._db = open_db(self.run_dir, create)
        version = self._meta("schema_version")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise SparsenasError(
                f"'{self.path}' was written by a newer sparsenas (store schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade sparsenas to read it"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- run spec -------------------------------------------------------------------------------

    def _meta(self, name: str) -> str | None:
        try:
            row = self._db.execute("select value from meta where name = ?", (name,)).fetchone()
        except sqlite3.OperationalError:  # a store opened read-only before its tables existed
            return None
        return None if row is None else row[0]

    def spec(self) -> dict[str, Any] | None:
        """The spec the run directory is bound to (None for a new store)."""
        value = self._meta("spec")
        if value is None:
            return None
        try:
            spec = json.loads(value)
        except json.JSONDecodeError:
            spec = None
        if not isinstance(spec, dict):
            raise SparsenasError(f"the spec stored in '{self.path}' is damaged; pass a new --out directory")
        return spec

    def set_spec(self, spec: dict[str, Any]) -> None:
        with self._db:
            self._db.execute("insert or replace into meta values ('spec', ?)", (json.dumps(spec, sort_keys=True),))
            self._db.execute("insert or replace into meta values ('schema_version', ?)", (str(SCHEMA_VERSION),))

    # -- trials ---------------------------------------------------------------------------------

    def done_keys(self) -> set[str]:
        return {r[0] for r in self._db.execute("select key from trials")}

    def put(self, trial: TrialRecord) -> None:
        """Write a trial and its curve atomically; writing a key twice is a no-op (idempotent).

        >>> import tempfile; s = Store(tempfile.mkdtemp()); len(s)
        0
        """
        self.put_many([trial])

    def put_many(self, trials: list[TrialRecord], masks: dict[str, bytes] | None = None, weights: dict[str, bytes] | None = None) -> None:
        """Write trials, their curves, their packed weight masks and trained weights (by key) in one
        transaction: all land or none (a population's members)."""
        with self._db:  # one transaction: the trial rows and their curves land together or not at all
            for key, bits in (masks or {}).items():
                self._db.execute("insert or ignore into masks values (?, ?)", (key, bits))
            for key, blob in (weights or {}).items():
                self._db.execute("insert or ignore into weights values (?, ?)", (key, blob))
            for trial in trials:
                cur = self._db.execute(
                    "insert or ignore into trials values (?, ?, ?, ?, ?, ?)",
                    (trial.key, trial.finder, trial.sparsity, trial.seed, trial.status, record_to_json(trial)),
                )
                if cur.rowcount == 0:
                    continue
                self._db.executemany(
                    "insert into curves values (?, ?, ?, ?, ?, ?)",
                    [(trial.key, e.epoch, e.train_loss, e.val_loss, e.val_acc, e.test_acc) for e in trial.curve],
                )

    def _blob(self, table: str, column: str, key: str) -> bytes | None:
        try:
            row = self._db.execute(f"select {column} from {table} where key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # a store written before the table existed
            return None
        return None if row is None else bytes(row[0])

    def weight_mask(self, key: str) -> bytes | None:
        """The packed weight mask of trial `key` (None for node trials and stores that predate masks);
        `masks.unpack_weight_mask(blob, parent)` reads it."""
        return self._blob("masks", "bits", key)

    def status(self, key: str) -> tuple[str, float, int] | None:
        """The stored trial `key`'s status, training wall seconds and the size of the population it
        trained in, or None if it is not stored.

        >>> import tempfile; Store(tempfile.mkdtemp()).status("0" * 16) is None
        True
        """
        row = self._db.execute(
            "select json_extract(record, '$.status'), json_extract(record, '$.wall_seconds'), json_extract(record, '$.population') "
            "from trials where key = ?",
            (key,),
        ).fetchone()
        return None if row is None else (str(row[0]), float(row[1]), int(row[2] or 1))

    def weights(self, key: str) -> bytes | None:
        """The packed trained weights of trial `key` (None where the store predates them);
        `store.weights.unpack_weights(blob)` reads them."""
        return self._blob("weights", "state", key)

    # -- named notes: state a resumed run must reuse (a hardware-aware search's front) -----------

    def note(self, name: str) -> str | None:
        """The text stored under `name` (None if none)."""
        return self._meta(f"note:{name}")

    def put_note(self, name: str, text: str) -> None:
        with self._db:
            self._db.execute("insert or ignore into meta values (?, ?)", (f"note:{name}", text))

    # -- exports: what `sparsenas export` wrote and measured -----------------------------------

    def put_export(self, key: str, path: str, result: dict[str, Any]) -> None:
        # a store opened without `create` (export reads an existing run) may predate this table
        self._db.executescript(SCHEMA)
        with self._db:
            self._db.execute("insert or replace into exports values (?, ?, ?)", (key, path, json.dumps(result, sort_keys=True)))

    def exports(self) -> list[dict[str, Any]]:
        """Every recorded export: {"key", "path", **result}, in key order (empty if none)."""
        try:
            rows = self._db.execute("select key, path, result from exports order by key, path").fetchall()
        except sqlite3.OperationalError:
            return []
        out = []
        for key, path, result in rows:
            try:
                out.append({"key": key, "path": path, **json.loads(result)})
            except ValueError:
                continue  # a damaged export line is left out of the report, never fatal
        return out

    # -- sessions: one line per `run` call that trained something ------------------------------

    def log_session(self, session: dict[str, Any]) -> None:
        """Append one session (device, trials run, seconds, peak memory...) to the run's history."""
        with self._db:
            self._db.execute("insert or replace into meta values ('sessions', ?)", (json.dumps([*self.sessions(), session]),))

    def sessions(self) -> list[dict[str, Any]]:
        """Every logged session, oldest first (empty for stores that predate the log)."""
        value = self._meta("sessions")
        try:
            items = json.loads(value) if value else []
        except json.JSONDecodeError:
            return []
        return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []

    def forget(self, key: str) -> bool:
        """Delete trial `key` with its curve, mask, weights and exports, in one transaction, so the
        run's own command trains it again (a damaged trial). False if no such trial is stored."""
        self._db.executescript(SCHEMA)  # tables a store made by an older sparsenas may lack
        with self._db:
            for table in ("weights", "masks", "curves", "exports", "superseded"):
                self._db.execute(f"delete from {table} where key = ?", (key,))
            return self._db.execute("delete from trials where key = ?", (key,)).rowcount > 0

    # -- superseded trials: made by older code for a trial the current code keys differently ------

    def identities(self) -> dict[str, tuple]:
        """{key: (finder, sparsity, seed, control, check, slot, match)} of every stored trial: what a
        trial is within its run, whatever version of the code keyed it."""
        out = {}
        for key, rec in self._db.execute("select key, record from trials"):
            try:
                out[key] = identity(json.loads(rec))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a damaged row is named by trials(), not here
        return out

    def supersede(self, replaced: dict[str, str]) -> None:
        """Mark each stored trial `old` of `replaced` ({old key: new key}) as superseded: its rows stay
        (users' data), but `trials()` leaves it out, so a report never mixes two versions' results."""
        if not replaced:
            return
        self._db.executescript(SCHEMA)  # a store made before the table existed
        with self._db:
            self._db.executemany("insert or replace into superseded values (?, ?)", sorted(replaced.items()))

    def superseded(self) -> dict[str, str]:
        """{old key: the key that replaced it} (empty for stores that predate the table)."""
        try:
            return dict(self._db.execute("select key, by_key from superseded"))
        except sqlite3.OperationalError:
            return {}

    def trials(self, include_superseded: bool = False) -> list[TrialRecord]:
        """Every stored trial with its curve, ordered by (finder, sparsity, seed); trials superseded
        by a newer version of the code are left out unless `include_superseded`."""
        curves: dict[str, list[EpochRecord]] = {}
        for key, *vals in self._db.execute("select * from curves order by key, epoch"):
            curves.setdefault(key, []).append(epoch_from_row(tuple(vals)))
        rows = self._db.execute("select key, record from trials order by finder, sparsity, seed")
        hidden = set() if include_superseded else set(self.superseded())
        out = []
        for key, rec in rows:
            if key in hidden:
                continue
            try:
                out.append(record_from_json(rec, tuple(curves.get(key, []))))
            except (ValueError, KeyError, TypeError, AttributeError):  # JSONDecodeError is a ValueError
                raise SparsenasError(
                    f"trial {key} in '{self.path}' is damaged (edited by hand?); delete its rows from the "
                    "trials and curves tables and re-run the same command to train it again"
                ) from None
        return out

    def __len__(self) -> int:
        return self._db.execute("select count(*) from trials").fetchone()[0]
