"""The protocol end to end: plan, hashes, determinism, resume after kill -9, divergence, run binding."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sparsenas.errors import SparsenasError
from sparsenas.models import build_parent
from sparsenas.protocol import RunSpec, make_plan, run, trial_key, trial_spec
from sparsenas.store import Store
from sparsenas.train import TrainSpec

from helpers import tiny_spec


def _numbers(out: Path) -> dict[str, tuple]:
    return {t.key: (t.finder, t.sparsity, t.seed, t.status, t.final_test_acc, tuple(e.val_loss for e in t.curve), t.node_mask) for t in Store(out).trials()}


def test_plan_dense_once_per_seed_and_keys_unique():
    spec = tiny_spec()
    plan = make_plan(spec, (32, 16))
    assert [(t.finder, t.sparsity, t.seed) for t in plan if t.finder == "dense"] == [("dense", 0.0, 0), ("dense", 0.0, 1)]
    assert len(plan) == 2 * (1 + 2 * 2) and len({t.key for t in plan}) == len(plan)


def test_trial_keys_are_pinned():
    """Changing these breaks every stored run's resume: bump HASH_VERSION on purpose, never by accident."""
    spec = RunSpec(train=TrainSpec(epochs=20, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.0, schedule="constant"))
    assert trial_key(trial_spec(spec, (256, 128), "dense", 0.0, 0)) == "effea87fed1b7063"
    assert trial_key(trial_spec(spec, (256, 128), "random", 0.8, 1)) == "1ab4b0cca4c49ed6"
    assert trial_key(trial_spec(spec, (256, 128), "random-search", 0.8, 1)) == "a4cb16365e34cab0"


def test_keys_depend_only_on_what_a_trial_uses():
    a, b = RunSpec(candidates=20), RunSpec(candidates=50, device="auto", sparsities=(0.1,))
    for finder in ("dense", "random"):
        assert trial_key(trial_spec(a, (8,), finder, 0.5, 0)) == trial_key(trial_spec(b, (8,), finder, 0.5, 0))
    assert trial_key(trial_spec(a, (8,), "random-search", 0.5, 0)) != trial_key(trial_spec(b, (8,), "random-search", 0.5, 0))
    c = RunSpec(train=TrainSpec(lr=0.1))
    assert trial_key(trial_spec(a, (8,), "random", 0.5, 0)) != trial_key(trial_spec(c, (8,), "random", 0.5, 0))


def test_same_spec_and_seed_give_the_same_numbers(tmp_path):
    spec = tiny_spec()
    run(spec, tmp_path / "a")
    run(spec, tmp_path / "b")
    a, b = _numbers(tmp_path / "a"), _numbers(tmp_path / "b")
    assert a == b and len(a) == 10


def test_a_trial_does_not_depend_on_what_else_ran(tmp_path):
    full = tiny_spec()
    alone = tiny_spec(finders=("random",), sparsities=(0.8,), seeds=(1,))
    run(full, tmp_path / "full")
    run(alone, tmp_path / "alone")
    (key, nums), = _numbers(tmp_path / "alone").items()
    assert _numbers(tmp_path / "full")[key] == nums


def test_every_trial_of_a_seed_starts_from_the_parents_init(tmp_path):
    spec = tiny_spec(epochs=1)
    run(spec, tmp_path)
    parent = build_parent("mlp", (1, 8, 8), 10, seed=1, widths=(32, 16))
    from sparsenas.data import load_dataset
    from sparsenas.masks import NodeMask, compact
    from sparsenas.train import evaluate

    val = load_dataset("digits", limit=300).val
    for t in Store(tmp_path).trials():
        if t.seed == 1:
            # epoch 0 of the stored curve is the sub-network of θ0 (seed 1) restricted to its mask
            loss, acc = evaluate(compact(parent, NodeMask(t.node_mask)), val)
            assert t.curve[0].val_loss == pytest.approx(loss, rel=1e-6) and t.curve[0].val_acc == acc


def test_rerun_skips_what_is_done(tmp_path):
    spec = tiny_spec()
    first = run(spec, tmp_path)
    second = run(spec, tmp_path)
    assert (first.ran, second.ran, second.skipped) == (10, 0, 10)


def test_run_dir_of_another_spec_is_refused_and_kept(tmp_path):
    run(tiny_spec(), tmp_path)
    before = _numbers(tmp_path)
    with pytest.raises(SparsenasError, match=r"holds a run of a different spec \(differs in: lr \(0.05 -> 0.2\)\); pass a new --out"):
        run(tiny_spec(lr=0.2), tmp_path)
    assert _numbers(tmp_path) == before
    run(tiny_spec(device="auto"), tmp_path)  # runtime fields may differ on resume


def test_diverging_trials_are_recorded_and_the_run_goes_on(tmp_path):
    summary = run(tiny_spec(lr=1e6, seeds=(0,)), tmp_path)
    trials = Store(tmp_path).trials()
    assert summary.ran == 5 and summary.diverged >= 1
    for t in trials:
        if t.status == "diverged":
            assert math.isnan(t.final_test_acc) and t.curve[0].epoch == 0
            assert all(math.isfinite(e.val_loss) for e in t.curve)


RUNNER = """
import sys
from sparsenas.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_resume_after_kill_9_loses_and_duplicates_nothing(tmp_path):
    args = ["run", "--quiet", "--no-report", "--limit", "600", "--widths", "64,32", "--epochs", "4", "--seeds", "3", "--candidates", "5"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, *args, "--out", str(out)])
    db = out / "sparsenas.db"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some, not all, trials are stored
        if db.exists() and len(Store(out)) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored_before = len(Store(out))
    assert 3 <= stored_before < 27, "the kill must land mid-run for this test to mean anything"
    assert subprocess.run([sys.executable, "-c", RUNNER, *args, "--out", str(out)]).returncode == 0
    assert subprocess.run([sys.executable, "-c", RUNNER, *args, "--out", str(tmp_path / "clean")]).returncode == 0
    resumed, clean = _numbers(out), _numbers(tmp_path / "clean")
    assert len(resumed) == 27 and resumed == clean


@pytest.mark.slow
def test_sigterm_ends_a_run_like_ctrl_c_and_logs_its_session(tmp_path):
    args = ["run", "--quiet", "--no-report", "--limit", "600", "--widths", "64,32", "--epochs", "4", "--seeds", "3", "--candidates", "5"]
    out = tmp_path / "termed"
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, *args, "--out", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((out / "sparsenas.db").exists() and len(Store(out)) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "re-run the same command to resume" in err
    stored = len(Store(out))
    assert 3 <= stored < 27
    sessions = Store(out).sessions()
    assert len(sessions) == 1 and sessions[0]["trials"] == stored


def test_a_run_grows_by_finders_sparsities_and_seeds(tmp_path):
    first = run(tiny_spec(finders=("dense", "random"), seeds=(0,), sparsities=(0.5,)), tmp_path)
    grown = run(tiny_spec(seeds=(0, 1), sparsities=(0.5, 0.8)), tmp_path)
    assert first.ran == 2 and (grown.skipped, grown.ran) == (2, 8)
    stored = Store(tmp_path).spec()
    assert stored["seeds"] == [0, 1] and stored["sparsities"] == [0.5, 0.8]
    assert stored["finders"] == ["dense", "random", "random-search"]


def test_a_run_on_other_data_is_refused(tmp_path):
    run(tiny_spec(seeds=(0,), sparsities=(0.5,)), tmp_path)
    with pytest.raises(SparsenasError, match=r"differs in: limit \(300 -> 200\)"):
        run(tiny_spec(seeds=(0,), sparsities=(0.5,), limit=200), tmp_path)
    from sparsenas.protocol import bind_run_dir

    with pytest.raises(SparsenasError, match="holds a run on other data"):
        bind_run_dir(Store(tmp_path), tiny_spec(seeds=(0,), sparsities=(0.5,)), "0123456789abcdef", (32, 16))


def test_only_real_differences_refuse_a_run(tmp_path):
    run(tiny_spec(finders=("dense", "random"), seeds=(0,), sparsities=(0.5,)), tmp_path)
    # the model's own widths spelled out, or an option of a finder this run never used: same run
    run(tiny_spec(finders=("dense", "random"), seeds=(0,), sparsities=(0.5,), widths=(32, 16), candidates=9), tmp_path)
    # adding random-search later adopts its options ...
    run(tiny_spec(seeds=(0,), sparsities=(0.5,), candidates=3), tmp_path)
    assert Store(tmp_path).spec()["candidates"] == 3
    # ... which then bind the directory
    with pytest.raises(SparsenasError, match=r"differs in: candidates \(3 -> 5\)"):
        run(tiny_spec(seeds=(0,), sparsities=(0.5,), candidates=5), tmp_path)
    with pytest.raises(SparsenasError, match=r"differs in: epochs \(3 -> 4\); widths"):
        run(tiny_spec(seeds=(0,), sparsities=(0.5,), candidates=3, epochs=4, widths=(8, 8)), tmp_path)


def test_convergence_and_best_epochs_are_trained_epochs(tmp_path):
    # with a vanishing learning rate nothing beats the init by much: epoch 0 must still not count
    run(tiny_spec(lr=1e-9, seeds=(0,), sparsities=(0.5,)), tmp_path)
    for t in Store(tmp_path).trials():
        assert t.min_val_loss_epoch >= 1 and t.best_val_epoch >= 1


def test_random_search_never_prefers_a_diverged_candidate(monkeypatch, digits_small):
    """Candidate 0's proxy is made NaN (as if it diverged in its proxy steps): it must not win."""
    import sparsenas.finders.random_search as rs
    from sparsenas.finders import SearchContext, get_finder
    from sparsenas.masks import allocate, random_mask

    seen = []
    real = rs.best_candidate

    def first_is_nan(losses):
        seen.append(list(losses))
        return real([float("nan"), *losses[1:]])

    monkeypatch.setattr(rs, "best_candidate", first_is_nan)
    parent = build_parent("mlp", digits_small.input_shape, 10, seed=0, widths=(32, 16))
    ctx = SearchContext(parent, digits_small, TrainSpec(), 0.5, 0, torch.Generator().manual_seed(9), {"candidates": 4, "proxy_steps": 0})
    found = get_finder("random-search").find(ctx)
    gen = torch.Generator().manual_seed(9)
    first = random_mask(parent.node_groups(), allocate(parent.node_groups(), 0.5), gen)
    # four finite losses were computed (as one population), and the NaN-ed first lost
    assert len(seen) == 1 and len(seen[0]) == 4 and all(map(math.isfinite, seen[0]))
    assert found.mask != first


def test_a_field_added_later_hashes_only_away_from_its_default(monkeypatch):
    """Simulate 'schedule' having been added after v1: at its default it must not enter the hash."""
    import sparsenas.protocol.plan as plan
    import sparsenas.train.spec as train_spec

    monkeypatch.setattr(train_spec, "V1_TRAIN_FIELDS", train_spec.V1_TRAIN_FIELDS - {"schedule"})
    assert "schedule" not in plan.trial_spec(RunSpec(), (8,), "random", 0.5, 0)["train"]
    cosine = RunSpec(train=TrainSpec(schedule="cosine"))
    assert plan.trial_spec(cosine, (8,), "random", 0.5, 0)["train"]["schedule"] == "cosine"
