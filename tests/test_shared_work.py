"""Work a seed's finders share (the trained dense parent, IMP's rounds) trains to the same numbers
whichever trial asks for it first, on a parent with dropout too; those trials' keys say so."""

from __future__ import annotations

import pytest
from torch import nn

from helpers import tiny_spec
from sparsenas.models import MODELS, build_parent, is_stochastic
from sparsenas.protocol import make_plan, run
from sparsenas.store import Store


@pytest.fixture(scope="module", autouse=True)
def dropout_model():
    if "test-shared-dropout" not in MODELS.names():

        @MODELS.register("test-shared-dropout", help="test: an MLP with dropout")
        def _drop(input_shape, num_classes, widths=None):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Dropout(0.5), nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, num_classes))


def _curves(out):
    with Store(out) as s:
        return {(t.finder, t.sparsity): [e.val_loss for e in t.curve] for t in s.trials()}


def test_probe_tells_dropout_parents_apart():
    assert is_stochastic(build_parent("test-shared-dropout", (1, 8, 8), 10, 0), (1, 8, 8))
    assert not is_stochastic(build_parent("mlp", (1, 8, 8), 10, 0), (1, 8, 8))
    assert not is_stochastic(build_parent("resnet20", (1, 28, 28), 10, 0, (4,)), (1, 28, 28))


def test_probe_asks_the_generator_not_the_outputs():
    # dropout of 1% over 3 units of a batch of 2 almost never drops anything: the outputs alone would say no
    light = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.01), nn.Linear(3, 2))
    assert is_stochastic(light, (1, 2, 2))
    # spectral norm's power iteration changes every training forward's output but draws nothing
    normed = nn.Sequential(nn.Flatten(), nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3)), nn.Linear(3, 2))
    assert not is_stochastic(normed, (1, 2, 2))


@pytest.mark.parametrize("finder", ["magnitude", "imp", "l1-norm"])
def test_a_trial_on_a_dropout_parent_does_not_depend_on_which_trial_asked_first(tmp_path, finder):
    # alone at 0.8, or after the 0.5 trial trained the shared parent (and IMP's first rounds)
    small = dict(model="test-shared-dropout", widths=None, seeds=(0,), epochs=2, finders=("dense", finder))
    run(tiny_spec(sparsities=(0.5, 0.8), **small), tmp_path / "both")
    run(tiny_spec(sparsities=(0.8,), **small), tmp_path / "alone")
    assert _curves(tmp_path / "both")[(finder, 0.8)] == _curves(tmp_path / "alone")[(finder, 0.8)]


def test_only_the_trials_of_shared_work_on_a_dropout_parent_get_another_key():
    spec = tiny_spec(finders=("dense", "random", "magnitude", "snip"), seeds=(0,), sparsities=(0.5,))
    plain, dropout = make_plan(spec, (24, 12)), make_plan(spec, (24, 12), stochastic=True)
    changed = [a.finder for a, b in zip(plain, dropout) if a.key != b.key]
    assert changed == ["magnitude"] and dropout[2].spec["rng"] == "shared-work"
