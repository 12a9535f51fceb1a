"""`sparsenas bench`: a tiny run measures all four methods and checks (d) against (a), on the default
LeNet-300-100 and on a conv/BatchNorm parent through the CLI; bad flags are one line and exit 2."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from sparsenas.bench import METHODS, run_bench, to_markdown, train_flops_per_sample
from sparsenas.cli import main
from sparsenas.masks import allocate, compact, random_mask
from sparsenas.models import build_parent


def test_a_tiny_bench_measures_every_method_and_finds_the_same_weights():
    lines: list[str] = []
    threads_before = torch.get_num_threads()
    result = run_bench((0.8,), (2, 3), steps=3, alone=1, log=lines.append, threads=1, rounds=2)
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
    assert torch.get_num_threads() == threads_before  # `threads` is the run's only
    assert (
        result["model"] == "lenet-300-100"
        and result["threads"] == 1
        and result["cpus"] >= 1
        and result["rounds"] == 2
        and len(result["load_average"]) == 2
    )
    md = to_markdown(result)
    assert md.startswith("model lenet-300-100 (266,610 parameters)") and "3 steps of batch 128, the methods taking turns 2 times" in md
    assert "| node sparsity | K | method |" in md and "same weights" in md and "command:" not in md
    assert any(METHODS["d"] in line for line in lines)


def test_a_resnet_bench_runs_end_to_end_and_its_table_names_the_model(tmp_path, capsys):
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    args = ["--model", "resnet20", "--widths", "4", "--sparsities", "0.5", "--populations", "2", "--steps", "2", "--alone", "1"]
    assert main(["bench", *args, "--threads", "1", "--out", str(md), "--out", str(js)]) == 0
    result = json.loads(js.read_text())
    assert result["model"] == "resnet20" and result["widths"] == [4] and result["threads"] == 1
    assert [r["method"] for r in result["rows"]] == ["a", "b", "c", "d"]
    assert all(r["subnet_epochs_per_s"] > 0 and r["useful_gflops"] > 0 for r in result["rows"])
    [check] = result["equality"]
    # BatchNorm's running statistics are compared too, and the eval-mode logits that read them
    assert check["equal"] and check["max_abs_diff"] < 1e-9 and check["max_abs_logit_diff"] < 1e-9
    table = md.read_text()
    assert table.startswith("model resnet20 (widths 4; ")
    assert "same weights" in table and "| 0.5 | 2 | (d) compacted population |" in table
    assert "command: `sparsenas bench --model resnet20 --widths 4 " in table and "--threads 1" in table
    assert "torch threads 1; load average" in table


def test_training_flops_count_what_backward_computes():
    parent = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0)
    g = parent.node_groups()
    net = compact(parent, random_mask(g, allocate(g, 0.5), torch.Generator().manual_seed(0)))
    macs = [784 * 150, 150 * 50, 50 * 10]
    # forward + weight gradients for every layer, input gradients for all but the first
    assert train_flops_per_sample(net, (1, 28, 28)) == 4 * sum(macs) + 2 * sum(macs[1:])


def test_conv_training_flops_count_output_positions_and_leave_the_net_as_it_was():
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),  # reads the input: 4x4 positions x 2 channels x 9 = 288 macs
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.Conv2d(2, 3, 3, stride=2, padding=1),  # 2x2 x 3 x (2*9) = 216 macs
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, 2),  # 6 macs
    )
    net[1].eval()  # a module's own mode survives the count
    assert train_flops_per_sample(net, (1, 4, 4)) == 4 * 288 + 6 * (216 + 6)
    assert net.training and not net[1].training
    assert int(net[1].num_batches_tracked) == 0 and float(net[1].running_mean.abs().sum()) == 0.0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--sparsities", "1.5"], r"sparsity must be in \[0, 1\)"),
        (["--sparsities", "x"], "--sparsities must be numbers"),
        (["--populations", "0,8"], "--populations must be integers from 1 to 4,096"),
        (["--steps", "many"], "--steps must be integers from 1 to 100,000"),
        (["--alone", "9", "--populations", "8"], "--alone 9 is more than the smallest population 8"),
        (["--device", "tpu"], "--device must be cpu or cuda"),
        (["--out", "/nonexistent/dir/bench.md"], "--out must be a .md or .json file in an existing folder"),
        (["--model", "nope"], "unknown model 'nope'; choose one of: .*resnet20"),
        (["--model", "resnet20", "--widths", "0"], "--widths must be at least 1, got 0"),
        (["--model", "resnet20", "--widths", "4,8"], "resnet20 takes --widths W"),
        (["--threads", "x"], "--threads must be"),
        (["--check-steps", "0"], "--check-steps must be integers from 1 to 100,000"),
        (["--rounds", "0"], "--rounds must be integers from 1 to 100"),
    ],
)
def test_bad_bench_flags_are_one_line_exit_2(args, message, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    import re

    assert re.search(message, err[0]), err[0]
