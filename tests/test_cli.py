"""The command line as a user meets it: list, run, report, and every bad input as one line, exit 2."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

import pytest

from sparsenas.cli import main
from sparsenas.store import Store

TINY = ["--limit", "200", "--widths", "16,8", "--epochs", "2", "--seeds", "2", "--sparsities", "0.5,0.9", "--candidates", "3", "--quiet"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "sparsenas", *args], capture_output=True, text=True, timeout=300)


def test_list_shows_every_registry():
    r = _cli("list")
    assert r.returncode == 0
    for name in ("digits", "fashion-mnist", "mnist5k", "mlp", "lenet-300-100", "lenet5", "dense", "random", "random-search"):
        assert f"  {name} " in r.stdout


def test_report_verdict_prints_the_table(tmp_path):
    assert main(["run", *TINY, "--no-report", "--out", str(tmp_path)]) == 0
    r = _cli("report", str(tmp_path), "--verdict")
    assert r.returncode == 0 and r.stdout.startswith("Finder − the random control with uniform per-layer counts, paired by seed:\n\n| finder | node sparsity | metric |")
    assert not (tmp_path / "report.md").exists()
    # --holm-family table: verdicts follow the family over every row, and the output says so
    r = _cli("report", str(tmp_path), "--verdict", "--holm-family", "table")
    assert r.returncode == 0 and "The verdict column follows Holm p (table)" in r.stdout
    r = _cli("report", str(tmp_path), "--holm-family", "rows")
    assert r.returncode == 2 and "invalid choice: 'rows'" in r.stderr


def test_a_finder_name_with_a_tilde_is_refused():
    from sparsenas.errors import SparsenasError
    from sparsenas.finders.base import Finder, register

    class Tilde(Finder):
        name, help = "mine~v2", "test: a name the report would read as a sanity check"

    with pytest.raises(SparsenasError, match="holds '~'"):
        register(Tilde)


def test_run_then_report_writes_the_three_files(tmp_path):
    out = tmp_path / "run"
    r = _cli("run", *TINY, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "10 trials planned: 0 already stored, 10 run" in r.stdout
    for f in ("report.html", "report.md", "trials.csv"):
        assert (out / f).is_file()
    (out / "report.md").unlink()
    r = _cli("report", str(out))
    assert r.returncode == 0 and (out / "report.md").is_file()
    again = _cli("run", *TINY, "--out", str(out), "--no-report")
    assert "10 already stored, 0 run" in again.stdout


def test_config_file_and_flag_override(tmp_path):
    cfg = tmp_path / "spec.toml"
    cfg.write_text('limit = 200\nwidths = [16, 8]\nepochs = 2\nseeds = 1\nsparsities = [0.5]\nfinders = ["dense", "random"]\n')
    assert main(["run", "--config", str(cfg), "--epochs", "1", "--quiet", "--no-report", "--out", str(tmp_path / "r")]) == 0
    trials = Store(tmp_path / "r").trials()
    assert len(trials) == 2 and all(len(t.curve) == 2 for t in trials)  # epochs=1 from the flag: init + 1


BAD = [
    (["run", "--sparsities", "0.5,1.2"], r"sparsity must be in \[0, 1\), got 1.2"),
    (["run", "--dataset", "cifar"], "unknown dataset 'cifar'; choose one of: cifar10, cifar100, digits, fashion-mnist, mnist5k"),
    (["run", "--model", "vgg"], "unknown model 'vgg'; choose one of"),
    (["run", "--finders", "dense,snap"], "unknown finder 'snap'; choose one of: bn-scale, dense, evolution, grasp, halving, imp, l1-norm, lce-search, magnitude, nsga2, random, random-erk, random-search, snip, synflow"),
    (["run", "--epochs", "many"], "--epochs must be an integer, got 'many'"),
    (["run", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent/fm"], "data directory '/nonexistent/fm' does not exist"),
    (["run", "--model", "lenet5"], "lenet5 needs images of at least 12x12, got 8x8"),
    (["run", "--config", "/nonexistent/spec.toml"], "spec file '/nonexistent/spec.toml' not found"),
    (["report", "/nonexistent/run"], "no sparsenas run in '/nonexistent/run'"),
    (["run", "--momentum", "-1"], r"--momentum must be in \[0, 1\)"),
    (["run", "--lr", "nan"], "--lr must be a positive number"),
    (["run", "--seeds", "10000000000000000000,1"], r"seeds must be distinct integers in \[0, 2\^63\)"),
    (["run", "--sparsities", "0.5,0.5"], "sparsities listed twice"),
    (["run", "--model", "lenet5", "--dataset", "mnist5k", "--widths", "6,16"], "lenet5 takes 4 widths"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_is_one_line_exit_2(args, message, tmp_path):
    r = _cli(*args, *(["--out", str(tmp_path / "o"), "--quiet"] if args[0] == "run" else []))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]


def test_bad_input_never_touches_a_stored_run(tmp_path):
    out = tmp_path / "run"
    assert _cli("run", *TINY, "--out", str(out), "--no-report").returncode == 0
    db = out / "sparsenas.db"
    before = db.read_bytes()
    for args in (["--lr", "0.5"], ["--sparsities", "2"], ["--dataset", "nope"]):
        r = _cli("run", *TINY, *args, "--out", str(out))
        assert r.returncode == 2 and "Traceback" not in r.stderr
    assert db.read_bytes() == before
    r = _cli("run", *TINY, "--lr", "0.5", "--out", str(out))
    assert "holds a run of a different spec (differs in: lr (0.05 -> 0.5))" in r.stderr
    assert db.read_bytes() == before


def test_corrupt_store_and_file_as_out_are_named(tmp_path):
    (tmp_path / "sparsenas.db").write_text("this is not sqlite " * 100)
    r = _cli("run", *TINY, "--out", str(tmp_path))
    assert r.returncode == 2 and "is not a readable sparsenas store" in r.stderr
    f = tmp_path / "file"
    f.write_text("x")
    r = _cli("run", *TINY, "--out", str(f))
    assert r.returncode == 2 and "is a file, not a directory" in r.stderr
    r = _cli("run", *TINY, "--out", str(f / "run"))
    assert r.returncode == 2 and "cannot create run directory" in r.stderr and "Traceback" not in r.stderr


def test_store_is_plain_sqlite(tmp_path):
    assert main(["run", *TINY, "--no-report", "--out", str(tmp_path)]) == 0
    with sqlite3.connect(tmp_path / "sparsenas.db") as db:
        n_trials = db.execute("select count(*) from trials").fetchone()[0]
        n_points = db.execute("select count(*) from curves").fetchone()[0]
    assert n_trials == 10 and n_points == 10 * 3  # epoch 0, 1, 2 per trial


def test_damaged_or_foreign_stores_are_named(tmp_path):
    out = tmp_path / "run"
    assert main(["run", *TINY, "--no-report", "--out", str(out)]) == 0
    with sqlite3.connect(out / "sparsenas.db") as db:
        db.execute("update trials set record = '{}' where finder = 'random'")
    r = _cli("report", str(out))
    assert r.returncode == 2 and "is damaged (edited by hand?)" in r.stderr and "Traceback" not in r.stderr
    with sqlite3.connect(out / "sparsenas.db") as db:
        db.execute("update meta set value = '[1, 2]' where name = 'spec'")
    r = _cli("run", *TINY, "--out", str(out))
    assert r.returncode == 2 and "the spec stored in" in r.stderr and "is damaged" in r.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "sparsenas.db") as db:
        db.execute("create table notes (t text)")
    for args in (["report", str(foreign)], ["run", *TINY, "--out", str(foreign)]):
        r = _cli(*args)
        assert r.returncode == 2 and "is not a sparsenas store" in r.stderr
    with sqlite3.connect(foreign / "sparsenas.db") as db:  # and nothing was written into it
        assert {n for (n,) in db.execute("select name from sqlite_master")} == {"notes"}


def test_out_directories_that_are_not_runs_are_left_alone(tmp_path):
    mine = tmp_path / "mydocs"
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    r = _cli("run", *TINY, "--out", str(mine))
    assert r.returncode == 2 and "holds other files but no sparsenas run" in r.stderr
    assert (mine / "report.md").read_text() == "my notes"
    r = _cli("run", *TINY, "--out", "")
    assert r.returncode == 2 and "--out is empty" in r.stderr


def test_options_a_dataset_does_not_read_are_refused(tmp_path):
    r = _cli("run", *TINY, "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "dataset 'digits' ships inside a Python package and reads no --data-dir" in r.stderr
    r = _cli("run", *TINY, "--config", str(tmp_path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "is a directory" in r.stderr


def test_a_reader_that_goes_away_is_not_an_error():
    # `sparsenas list | head -0`: the pipe closes before anything is read
    p = subprocess.Popen([sys.executable, "-m", "sparsenas", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and err == ""


def test_export_repeats_are_bounded(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--trial", "x", "-o", str(tmp_path / "m.pt2"), "--repeats", "18446744073709551616"]) == 2
    assert "--repeats must be from 1 to 100,000" in capsys.readouterr().err


def test_bench_sizes_are_bounded(capsys):
    assert main(["bench", "--steps", "18446744073709551616"]) == 2
    assert "--steps must be integers from 1 to 100,000" in capsys.readouterr().err


def test_a_quiet_run_still_says_which_trials_diverged(tmp_path):
    r = _cli("run", "--limit", "100", "--epochs", "1", "--seeds", "1", "--sparsities", "0.5", "--lr", "1e6",
             "--no-report", "--quiet", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("diverged: ")]
    assert lines and all("(recorded; the run goes on)" in x for x in lines), r.stderr
