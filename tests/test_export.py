"""`sparsenas export`: stored weights, the compacted program, its output check, latency, the report."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import random
import re
import shutil
import shlex
import sqlite3
import subprocess
import sys
import zlib

import pytest
import torch

from helpers import tiny_spec
from sparsenas.cli import main
from sparsenas.errors import SparsenasError
from sparsenas.export import export_trial, load_trained
from sparsenas.masks import NodeMask, compact, expand
from sparsenas.models import build_parent
from sparsenas.protocol import run
from sparsenas.store import Store
from sparsenas.store.weights import pack_weights


@pytest.fixture(scope="module")
def node_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("node")
    run(tiny_spec(finders=("dense", "random"), seeds=(0,), epochs=2), out)
    return out


@pytest.fixture(scope="module")
def weight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("weight")
    run(tiny_spec(finders=("magnitude",), space="weight", allocation="global", sparsities=(0.98,), seeds=(0,), epochs=2), out)
    return out


def _key(run_dir, finder: str) -> str:
    with Store(run_dir) as s:
        return next(t.key for t in s.trials() if t.finder == finder)


def test_stored_weights_are_the_trained_ones(node_run):
    rec, data, masked, small = load_trained(node_run, _key(node_run, "random"))
    # the stored compacted net reproduces the stored final test accuracy
    with torch.no_grad():
        acc = (small(data.test.x).argmax(1) == data.test.y).float().mean().item()
    assert acc == pytest.approx(rec.final_test_acc, abs=1e-6)
    assert tuple(small.fc1.weight.shape) == (rec.kept_nodes[0], 64)
    assert masked.fc1.weight.shape[0] == 32 and int((masked.fc1.weight.abs().sum(1) > 0).sum()) == rec.kept_nodes[0]


def test_expand_is_the_inverse_of_compact():
    p = build_parent("lenet5", (1, 16, 16), 10, seed=0, widths=(4, 6, 12, 8))
    m = NodeMask(((0, 2), (1, 3, 5), tuple(range(0, 12, 2)), (1, 2, 7)))
    small = compact(p, m)
    full = expand(p, m, small)
    assert torch.equal(compact(full, m).conv2.weight, small.conv2.weight)
    x = torch.randn(3, 1, 16, 16)
    torch.testing.assert_close(full(x), small(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("which", ["node", "weight"])
def test_export_checks_and_loads_without_sparsenas(which, node_run, weight_run, tmp_path):
    run_dir, finder = (node_run, "random") if which == "node" else (weight_run, "magnitude")
    key = _key(run_dir, finder)
    out = tmp_path / "sub.pt2"
    r = export_trial(run_dir, key, out, repeats=3)
    assert out.is_file() and r.max_abs_diff < 1e-4 and r.argmax_agree == 1.0
    # the file holds the sub-network, not the test set its sample input was sliced from
    assert r.file_bytes < 4 * r.params_export + 200_000
    assert [lat.batch for lat in r.latency_parent] == [1, 128] and all(lat.median_ms > 0 for lat in r.latency_export)
    if which == "weight":  # units no kept weight reads are gone; a 0.98 global mask leaves some
        assert sum(r.kept_nodes) < 32 + 16 and r.params_export < r.params_parent
    # a fresh interpreter that cannot import sparsenas loads and runs it, with the same outputs
    _, data, masked, _ = load_trained(run_dir, key)
    x = data.test.x[:16]
    torch.save(x, tmp_path / "x.pt")
    # ... and reads what the program expects from the file alone; any batch size works
    code = (
        "import sys; sys.modules['sparsenas'] = None\n"
        "import torch\n"
        "extra = {'sparsenas.json': ''}\n"
        f"m = torch.export.load(open({str(out)!r}, 'rb'), extra_files=extra).module()\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r})\n"
        "assert m(x[:1]).shape == (1, 10) and m(x.repeat(3, 1, 1, 1)).shape == (48, 10)\n"
        f"torch.save(m(x), {str(tmp_path / 'y.pt')!r})\n"
        f"open({str(tmp_path / 'info.json')!r}, 'w').write(extra['sparsenas.json'])\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "y.pt"), masked(x), rtol=1e-4, atol=1e-5)
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["input"] == r.input == "float32 (N, 1, 8, 8)" and info["input_shape"] == ["N", 1, 8, 8]
    assert info["trial"] == key and info["num_classes"] == r.num_classes == 10 and info["finder"] == finder
    with Store(run_dir) as s:
        assert any(e["key"] == key and e["path"] == str(out) and e["input"] == r.input for e in s.exports())


def test_cli_export_writes_report_section(node_run, tmp_path, capsys):
    key = _key(node_run, "dense")
    assert main(["export", str(node_run), "--trial", key[:6], "-o", str(tmp_path / "d.pt2"), "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "check:" in out and "latency at batch 128" in out
    assert "input: float32 (N, 1, 8, 8), any batch size N -> logits (N, 10)" in out
    report = (node_run / "report.md").read_text()
    assert "## Exported sub-networks" in report and key in report and "| float32 (N, 1, 8, 8) |" in report


@pytest.mark.parametrize("args, message", [
    (["--trial", "nope"], "no trial 'nope'"),
    (["--trial", ""], "no trial ''"),
    (["--trial", "x", "--repeats", "0"], "--repeats must be from 1 to 100,000"),
])
def test_cli_export_errors(node_run, tmp_path, capsys, args, message):
    assert main(["export", str(node_run), *args, "-o", str(tmp_path / "m.pt2")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.pt2").exists()


def test_export_errors(node_run, tmp_path):
    key = _key(node_run, "random")
    with pytest.raises(SparsenasError, match="is a directory"):
        export_trial(node_run, key, tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(SparsenasError, match="cannot create folder '.*file' for .*; pass another -o"):
        export_trial(node_run, key, tmp_path / "file" / "m.pt2")
    with pytest.raises(SparsenasError, match="no sparsenas run"):
        export_trial(tmp_path, key, tmp_path / "m.pt2")
    with pytest.raises(SparsenasError, match="no trial"):  # and no folder made for a file never written
        export_trial(node_run, "nope", tmp_path / "never" / "m.pt2")
    assert not (tmp_path / "never").exists()


def test_export_creates_the_output_folder(node_run, tmp_path):
    # the README's own example writes into exports/, which a fresh checkout does not have
    out = tmp_path / "exports" / "deeper" / "model.pt2"
    r = export_trial(node_run, _key(node_run, "random"), out, repeats=1)
    assert out.is_file() and r.path == str(out)


class _Custom:  # no tensor: torch.load(weights_only=True) must refuse it
    pass


class _RunsCode:  # unpickled without weights_only, this would run a shell command
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return zlib.compress(buf.getvalue())


@pytest.mark.parametrize("tamper, reason", [
    ("reduce", "UnpicklingError: Trying to load unsupported GLOBAL"),
    ("custom class", "UnpicklingError: Unsupported global: GLOBAL"),
    ("truncated", "not zlib data"),
    ("random bytes", "not zlib data"),
    ("truncated inside zlib", "RuntimeError: PytorchStreamReader failed"),
    ("list of tensors", "a list, not a state dict"),
    ("other tensors", "they do not fit the trial's sub-network"),
])
def test_a_tampered_weights_blob_is_one_line_with_the_fix(tamper, reason, node_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(node_run, run_dir)
    key = _key(run_dir, "random")
    db = sqlite3.connect(run_dir / "sparsenas.db")
    good = bytes(db.execute("select state from weights where key = ?", (key,)).fetchone()[0])
    marker = tmp_path / "ran"
    blob = {
        "reduce": lambda: zlib.compress(pickle.dumps(collections.OrderedDict(w=_RunsCode(str(marker))), protocol=2)),
        "custom class": lambda: _saved(collections.OrderedDict(w=_Custom())),
        "truncated": lambda: good[: len(good) // 2],
        "random bytes": lambda: random.Random(0).randbytes(len(good)),
        "truncated inside zlib": lambda: zlib.compress(zlib.decompress(good)[:500]),
        "list of tensors": lambda: _saved([torch.zeros(3)]),
        "other tensors": lambda: pack_weights(torch.nn.Linear(3, 2)),
    }[tamper]()
    with db:
        db.execute("update weights set state = ? where key = ?", (blob, key))
    db.close()
    out = tmp_path / "m.pt2"
    assert main(["export", str(run_dir), "--trial", key, "-o", str(out), "--no-report"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith(f"error: stored weights of trial {key} are unreadable; to train it again run: sparsenas forget ")
    assert reason in captured.err
    assert not marker.exists() and not out.exists()
    if tamper == "reduce":  # the fix the message gives works: forget as told, re-run, export
        forget = re.search(r"run: (sparsenas forget .*?), then", captured.err).group(1)
        assert main(shlex.split(forget)[1:]) == 0
        assert run(tiny_spec(finders=("dense", "random"), seeds=(0,), epochs=2), run_dir).ran == 1
        assert export_trial(run_dir, key, out, repeats=1).key == key


def test_export_of_a_trial_without_stored_weights(tmp_path):
    run(tiny_spec(finders=("random",), seeds=(0,), sparsities=(0.5,), epochs=1), tmp_path)
    key = _key(tmp_path, "random")
    db = sqlite3.connect(tmp_path / "sparsenas.db")
    with db:
        db.execute("delete from weights")  # as a store written before weights were kept
    db.close()
    with pytest.raises(SparsenasError, match="no stored weights"):
        export_trial(tmp_path, key, tmp_path / "m.pt2")


def test_a_diverged_trial_is_refused(tmp_path):
    run(tiny_spec(finders=("dense",), seeds=(0,), sparsities=(0.5,), epochs=2, lr=1e5), tmp_path)
    with Store(tmp_path) as s:
        t = s.trials()[0]
    assert t.status == "diverged"
    with pytest.raises(SparsenasError, match="diverged during training"):
        export_trial(tmp_path, t.key, tmp_path / "m.pt2")
    assert not (tmp_path / "m.pt2").exists()


def test_weights_are_compressed_only_where_zeros_make_it_pay():
    import io
    import zlib

    from sparsenas.store.weights import unpack_weights

    dense = torch.nn.Linear(200, 100)
    sparse = torch.nn.Linear(200, 100)
    with torch.no_grad():
        sparse.weight.mul_((torch.rand_like(sparse.weight) < 0.1).float())  # 90% zeros, as a weight trial
    raw = {}
    for name, net in (("dense", dense), ("sparse", sparse)):
        buf = io.BytesIO()
        torch.save(net.state_dict(), buf)
        raw[name] = len(buf.getvalue())
        blob = pack_weights(net)
        back = unpack_weights(blob)
        assert all(torch.equal(back[k], v) for k, v in net.state_dict().items())
        if name == "dense":
            assert len(blob) > 0.99 * raw[name]  # stored as it is: 8% smaller was not worth 70 ms
        else:
            assert len(blob) < 0.4 * raw[name]
    # blobs written compressed by earlier versions read as before
    buf = io.BytesIO()
    torch.save(dense.state_dict(), buf)
    assert torch.equal(unpack_weights(zlib.compress(buf.getvalue(), level=6))["weight"], dense.weight)
