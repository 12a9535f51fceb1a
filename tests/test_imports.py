"""--import: a run of a parent registered in the user's own file can be run, reported and exported
from the command line, and every failure to import is one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sparsenas.cli import main
from sparsenas.store import Store

USER_FILE = '''
from torch import nn
from sparsenas.models import MODELS


@MODELS.register("user-file-mlp", help="a plain Sequential registered in the user's own file")
def user_mlp(input_shape, num_classes, widths=None):
    w = widths or (12,)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, w[0]), nn.ReLU(), nn.Linear(w[0], num_classes))
'''


def _cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparsenas", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_run_report_and_export_a_user_registered_parent(tmp_path):
    user = tmp_path / "my_models.py"
    user.write_text(USER_FILE)
    out = tmp_path / "run"
    tiny = ["--model", "user-file-mlp", "--limit", "120", "--epochs", "1", "--seeds", "1", "--sparsities", "0.5",
            "--finders", "dense,random", "--quiet", "--no-report"]
    r = _cli("run", *tiny, "--out", str(out), "--import", str(user))
    assert r.returncode == 0, r.stderr
    with Store(out) as s:
        key = next(t.key for t in s.trials() if t.finder == "random")
    export = ["export", str(out), "--trial", key, "-o", str(tmp_path / "m.pt2"), "--repeats", "2"]
    # export rebuilds the parent: without the user's code its name is unknown, said in one line with the fix
    r = _cli(*export)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "unknown model 'user-file-mlp'" in r.stderr and "--import" in r.stderr
    r = _cli(*export, "--import", str(user))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.pt2").is_file()
    # a module name from the current folder works as a file does
    assert _cli("report", str(out), "--import", "my_models", cwd=str(tmp_path)).returncode == 0


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "--import {f}: file not found"),
        ("raise ValueError('bad config')\n", "--import {f} failed: ValueError: bad config; fix that file"),
        ("import no_such_dependency_xyz\n", "--import {f} failed: ModuleNotFoundError: No module named 'no_such_dependency_xyz'"),
        ("def broken(:\n", "--import {f} failed: SyntaxError"),
        ("import sys; sys.exit(3)\n", "--import {f} failed: SystemExit: 3"),
    ],
)
def test_import_failures_are_one_line(tmp_path, capsys, content, message):
    f = tmp_path / "user.py"
    if content is not None:
        f.write_text(content)
    assert main(["list", "--import", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(f=f) in err


def test_unknown_module_name_is_one_line(capsys):
    assert main(["list", "--import", "no_such_module_xyz"]) == 2
    assert "--import no_such_module_xyz: no file or module of that name" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("sparsenas ")


def test_entry_point_plugins_load_on_every_command(tmp_path, monkeypatch, capsys):
    import importlib.metadata

    (tmp_path / "installed_plugin_xyz.py").write_text(
        "from sparsenas.models import MODELS\n"
        "from torch import nn\n"
        "@MODELS.register('plugin-mlp-xyz', help='registered by an installed package')\n"
        "def f(input_shape, num_classes, widths=None):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.ReLU(), nn.Linear(4, num_classes))\n"
    )
    (tmp_path / "broken_plugin_xyz.py").write_text("raise RuntimeError('half installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    group = "sparsenas.plugins"
    good = importlib.metadata.EntryPoint(name="mine", value="installed_plugin_xyz", group=group)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [good])
    assert main(["list"]) == 0
    assert "plugin-mlp-xyz" in capsys.readouterr().out
    bad = importlib.metadata.EntryPoint(name="broken", value="broken_plugin_xyz", group=group)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [bad])
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plugin 'broken' (broken_plugin_xyz) failed to load: RuntimeError: half installed" in err
