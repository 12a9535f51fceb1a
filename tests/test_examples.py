"""The README's bring-your-own example runs as shipped, and its parent compacts exactly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from sparsenas.masks import allocate, apply_weight_masks, compact, random_mask, weight_masks
from sparsenas.store import Store

EXAMPLE = Path(__file__).parent.parent / "examples" / "bring_your_own.py"


def _load():
    spec = importlib.util.spec_from_file_location("bring_your_own", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bring_your_own_example_runs_and_reports(tmp_path):
    mod = _load()
    mod.main(["--out", str(tmp_path), "--epochs", "2", "--seeds", "2"])
    trials = Store(tmp_path).trials()
    assert len(trials) == 2 * (1 + 2 * 2)
    assert {t.finder for t in trials} == {"dense", "random", "random-search"}
    assert (tmp_path / "report.md").read_text().count("random-search at node sparsity") >= 2
    # the custom parent compacts to a net with the masked parent's outputs
    parent = mod.gelu_mlp((30,), 2)
    groups = parent.node_groups()
    m = random_mask(groups, allocate(groups, 0.7), torch.Generator().manual_seed(0))
    x = torch.randn(8, 30)
    torch.testing.assert_close(compact(parent, m)(x), apply_weight_masks(parent, weight_masks(parent, m))(x))
