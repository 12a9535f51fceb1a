"""Two runs on one --out: the second is refused in one line and nothing is trained twice."""

from __future__ import annotations

import subprocess
import sys

from sparsenas.cli import main
from sparsenas.store import Store

TINY = ["--limit", "200", "--widths", "16,8", "--epochs", "1", "--seeds", "1", "--sparsities", "0.5", "--candidates", "2", "--quiet"]

HOLD = """
import sys, time
from sparsenas.store import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_run_on_a_held_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(out), "--no-report"]) == 0
    with Store(out) as s:
        before = len(s.done_keys())
    # a real second process holds the directory, as a concurrent `sparsenas run` would
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["run", *TINY, "--seeds", "2", "--out", str(out), "--no-report"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is in use by another sparsenas run (pid" in err and "Traceback" not in err
        with Store(out) as s:
            assert len(s.done_keys()) == before  # the refused run trained and stored nothing
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the killed holder's lock: the same command now resumes
    assert main(["run", *TINY, "--seeds", "2", "--out", str(out), "--no-report"]) == 0
    assert "1 trials planned" not in capsys.readouterr().out
    with Store(out) as s:
        assert len(s.done_keys()) == 2 * before
        assert len(s.sessions()) == 2


def test_two_concurrent_runs_never_train_a_trial_twice(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "sparsenas", "run", *TINY, "--epochs", "3", "--seeds", "3", "--out", str(out), "--no-report"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in results)
    # one ran; the other either was refused in one line or found the work done
    ran = [r for r in results if r[0] == 0]
    assert codes[0] == 0 and codes[1] in (0, 2)
    for code, _, err in results:
        assert "Traceback" not in err
        if code == 2:
            assert "is in use by another sparsenas run" in err
    with Store(out) as s:
        sessions = s.sessions()
    assert sum(x["trials"] for x in sessions) == 9  # 3 seeds x (dense, random, random-search), trained once
    assert len(ran) >= 1
