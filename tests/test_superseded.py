"""A trial keyed by older code (its finder's masks changed since, so its key did) gives way to the
new trial of the same finder, sparsity, seed and arm: the report never mixes two versions' results,
and the old rows stay in the store."""

from __future__ import annotations

import json
import sqlite3

from sparsenas.cli import main
from sparsenas.store import Store

# global weight-space magnitude: the finder whose keys gained `topk: floor` when its count changed
ARGS = ["--limit", "150", "--widths", "16,8", "--epochs", "1", "--seeds", "2", "--sparsities", "0.9", "--space", "weight",
        "--allocation", "global", "--finders", "dense,random,magnitude", "--quiet", "--no-report"]


def _age(db_path, finder: str) -> dict[str, str]:
    """Rewrite `finder`'s trials as an older version of the code would have keyed them: {old: new key}."""
    db = sqlite3.connect(db_path)
    renamed = {}
    with db:
        for key, rec in db.execute("select key, record from trials where finder = ?", (finder,)).fetchall():
            old = "0ld" + key[3:]
            d = json.loads(rec)
            d["key"] = old
            d["spec"].pop("topk", None)
            for table in ("masks", "weights", "curves"):
                db.execute(f"update {table} set key = ? where key = ?", (old, key))
            db.execute("update trials set key = ?, record = ? where key = ?", (old, json.dumps(d), key))
            renamed[old] = key
    db.close()
    return renamed


def test_a_resumed_run_replaces_trials_of_older_code_and_keeps_their_rows(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *ARGS, "--out", str(out)]) == 0
    renamed = _age(out / "sparsenas.db", "magnitude")
    assert len(renamed) == 2
    with Store(out) as s:
        assert {t.key for t in s.trials() if t.finder == "magnitude"} == set(renamed)  # the old version, alone
    capsys.readouterr()
    assert main(["run", *ARGS, "--out", str(out)]) == 0
    assert "2 already stored" not in capsys.readouterr().out  # 6 planned: 4 stored, the 2 magnitude trials run again
    with Store(out) as s:
        current = s.trials()
        assert len(current) == 6 and {t.key for t in current if t.finder == "magnitude"} == set(renamed.values())
        assert s.superseded() == renamed
        assert len(s.trials(include_superseded=True)) == 8  # nothing deleted
    # the report and load_run read one version
    assert main(["report", str(out)]) == 0
    csv = (out / "trials.csv").read_text()
    assert not any(old in csv for old in renamed)


def test_export_of_a_superseded_key_names_its_successor(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *ARGS, "--seeds", "1", "--out", str(out)]) == 0
    renamed = _age(out / "sparsenas.db", "magnitude")
    assert main(["run", *ARGS, "--seeds", "1", "--out", str(out)]) == 0
    (old, new), = renamed.items()
    capsys.readouterr()
    assert main(["export", str(out), "--trial", old[:8], "-o", str(tmp_path / "m.pt2")]) == 2
    err = capsys.readouterr().err
    assert f"trial {old} was superseded by trial {new}" in err and err.count("\n") == 1
