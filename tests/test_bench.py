"""`sparsenas bench`: a tiny run measures all four methods and checks (d) against (a); bad flags
are one line and exit 2."""

from __future__ import annotations

import math

import pytest

from sparsenas.bench import METHODS, run_bench, to_markdown, train_flops_per_sample
from sparsenas.cli import main
from sparsenas.masks import allocate, compact, random_mask
from sparsenas.models import build_parent
import torch


def test_a_tiny_bench_measures_every_method_and_finds_the_same_weights():
    lines: list[str] = []
    result = run_bench((0.8,), (2, 3), steps=3, alone=1, log=lines.append)
    rows = result["rows"]
    assert [(r["k"], r["method"]) for r in rows] == [(k, m) for k in (2, 3) for m in "abcd"]
    for r in rows:
        assert r["subnet_epochs_per_s"] > 0 and r["useful_gflops"] > 0 and r["peak_mib"] > 0
        assert 0 < r["of_mm_peak"] < 2 and math.isfinite(r["added_mib"])
    assert all(r["speedup_vs_a"] == 1.0 for r in rows if r["method"] == "a")
    # (a)-(c) do not depend on K: one measurement reused for every K
    assert len({r["subnet_epochs_per_s"] for r in rows if r["method"] == "b"}) == 1
    [check] = result["equality"]
    assert check["equal"] and check["population"] == 3 and check["max_abs_diff"] < 1e-9
    assert result["mm_peak_gflops"] > 0
    md = to_markdown(result)
    assert "| node sparsity | K | method |" in md and "same weights" in md
    assert any(METHODS["d"] in line for line in lines)


def test_training_flops_count_what_backward_computes():
    parent = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0)
    g = parent.node_groups()
    net = compact(parent, random_mask(g, allocate(g, 0.5), torch.Generator().manual_seed(0)))
    macs = [784 * 150, 150 * 50, 50 * 10]
    # forward + weight gradients for every layer, input gradients for all but the first
    assert train_flops_per_sample(net) == 4 * sum(macs) + 2 * sum(macs[1:])


@pytest.mark.parametrize("args,message", [
    (["--sparsities", "1.5"], r"sparsity must be in \[0, 1\)"),
    (["--sparsities", "x"], "--sparsities must be numbers"),
    (["--populations", "0,8"], "--populations must be integers from 1 to 4,096"),
    (["--steps", "many"], "--steps must be integers from 1 to 100,000"),
    (["--alone", "9", "--populations", "8"], "--alone 9 is more than the smallest population 8"),
    (["--device", "tpu"], "--device must be cpu or cuda"),
    (["--out", "/nonexistent/dir/bench.md"], "--out must be a .md or .json file in an existing folder"),
])
def test_bad_bench_flags_are_one_line_exit_2(args, message, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    import re

    assert re.search(message, err[0]), err[0]
