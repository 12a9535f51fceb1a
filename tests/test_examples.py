"""The README's bring-your-own example runs as shipped, and its parent compacts exactly.

Both run in subprocesses: the example registers a dataset and a model, and those registrations
must not leak into the registry-driven tests of this process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sparsenas.store import Store

EXAMPLE = Path(__file__).parent.parent / "examples" / "bring_your_own.py"

COMPACTION_CHECK = f"""
import importlib.util, torch
from sparsenas.masks import allocate, apply_weight_masks, compact, random_mask, weight_masks
spec = importlib.util.spec_from_file_location("byo", {str(EXAMPLE)!r}); mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
parent = mod.gelu_mlp((30,), 2); groups = parent.node_groups()
m = random_mask(groups, allocate(groups, 0.7), torch.Generator().manual_seed(0))
x = torch.randn(8, 30)
torch.testing.assert_close(compact(parent, m)(x), apply_weight_masks(parent, weight_masks(parent, m))(x))
print("equal")
"""


def test_bring_your_own_example_runs_and_reports(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(tmp_path), "--epochs", "2", "--seeds", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    trials = Store(tmp_path).trials()
    assert len(trials) == 2 * (1 + 2 * 2)
    assert {t.finder for t in trials} == {"dense", "random", "random-search"}
    assert all(t.curve[0].epoch == 0 and len(t.curve) == 3 for t in trials)
    assert (tmp_path / "report.md").read_text().count("random-search at node sparsity") >= 2


def test_custom_parent_compacts_to_the_masked_parent():
    r = subprocess.run([sys.executable, "-c", COMPACTION_CHECK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "equal", r.stderr


OWN_FINDER = Path(__file__).parent.parent / "examples" / "own_finder.py"


def test_own_finder_example_runs_in_the_weight_space(tmp_path):
    r = subprocess.run([sys.executable, str(OWN_FINDER), "--out", str(tmp_path), "--epochs", "2", "--seeds", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    trials = Store(tmp_path).trials()
    # per seed: dense, and at 2 sparsities random, snip and init-magnitude with 2 checks each
    assert len(trials) == 2 * (1 + 2 * (1 + 3 + 3))
    mine = [t for t in trials if t.finder == "init-magnitude" and not t.check]
    assert mine and all(t.space == "weight" and abs(t.weight_sparsity - t.sparsity) < 1e-3 for t in mine)
    assert "| init-magnitude | shuffle |" in (tmp_path / "report.md").read_text()


OWN_RESNET = Path(__file__).parent.parent / "examples" / "own_resnet.py"


def test_own_resnet_example_discovers_its_streams_and_runs(tmp_path):
    r = subprocess.run([sys.executable, str(OWN_RESNET), "--out", str(tmp_path), "--epochs", "1", "--seeds", "1", "--width", "4"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # the first stage's stream: the stem and both blocks' second convs, with their BatchNorms
    assert lines[0] == ("group 'conv': 4 nodes; written by conv, stage1.0.conv2, stage1.1.conv2 (normalized by bn, stage1.0.bn2, "
                        "stage1.1.bn2); read by stage1.0.conv1, stage1.1.conv1, stage2.0.conv1, stage2.0.shortcut.0")
    assert sum(line.startswith("group ") for line in lines) == 6
    trials = Store(tmp_path).trials()
    assert len(trials) == 1 + 2 * 2 and all(t.status == "done" for t in trials)
    assert {t.kept_nodes for t in trials if t.sparsity == 0.5} == {(2, 2, 2, 4, 4, 4)}


BN_RECALIBRATION = Path(__file__).parent.parent / "examples" / "bn_recalibration.py"


def test_bn_recalibration_example_reads_a_finetune_run(tmp_path):
    import importlib.util

    import torch
    from torch import nn

    from helpers import tiny_spec
    from sparsenas.export import load_trained
    from sparsenas.protocol import run

    spec = importlib.util.spec_from_file_location("bn_recalibration", BN_RECALIBRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # registers nothing: safe in this process
    bn = nn.BatchNorm1d(2)
    mod.recalibrate(nn.Sequential(bn), torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]]), 1)
    assert bn.running_mean.tolist() == [3.0, 6.0] and bn.running_var.tolist() == [4.0, 16.0] and bn.momentum == 0.1

    run(tiny_spec(model="resnet20", widths=(4,), limit=200, finders=("dense", "random", "l1-norm"), starts=("finetune",),
                  seeds=(0,), sparsities=(0.5,), epochs=1), tmp_path)
    rows = mod.check(str(tmp_path), "l1-norm", 2)
    assert [(s, seed) for s, seed, _, _ in rows] == [(0.5, 0)]
    ft = next(t for t in Store(tmp_path).trials() if t.check == "finetune")
    assert rows[0][2] == ft.curve[0].val_acc  # "as cut" is the finetune start's own epoch 0
    r = subprocess.run([sys.executable, str(BN_RECALIBRATION), str(tmp_path), "--batches", "2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[2] == f"| 0.5 | 0 | {rows[0][2] * 100:.2f} | {rows[0][3] * 100:.2f} |"
    r = subprocess.run([sys.executable, str(BN_RECALIBRATION), str(tmp_path), "--finder", "snip"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == f"error: '{tmp_path}' holds no snip~finetune trials; run it with --finders dense,snip --starts finetune"
    assert load_trained(tmp_path, ft.key)[0].key == ft.key  # the store is left readable
    r = subprocess.run([sys.executable, str(BN_RECALIBRATION), str(tmp_path), "--batches", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "error: --batches must be at least 1, got 0"


def test_bn_recalibration_refuses_a_finder_whose_finetune_is_not_the_dense_parent(tmp_path):
    import importlib.util

    import pytest

    from helpers import tiny_spec
    from sparsenas.errors import SparsenasError
    from sparsenas.protocol import run

    spec = importlib.util.spec_from_file_location("bn_recalibration", BN_RECALIBRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # a strong penalty, so the penalized parent is measurably another net after this tiny run's few steps
    run(tiny_spec(model="resnet20", widths=(4,), limit=200, finders=("dense", "random", "bn-scale"), starts=("finetune",),
                  seeds=(0,), sparsities=(0.5,), epochs=2, finder_options={"bn_penalty": 0.05}), tmp_path)
    with pytest.raises(SparsenasError, match="bn-scale~finetune of seed 0 does not start from the trained dense parent"):
        mod.check(str(tmp_path), "bn-scale", 2)
