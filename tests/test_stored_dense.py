"""A seed's stored dense trial is its trained parent: finders that rank a trained parent (magnitude,
l1-norm, a finetune start) load it from the store instead of training the parent a second time.

The promise is bit-equality: a run grown onto a store whose dense trials are done gives those
finders' trials exactly the numbers a run that trained everything at once gives (where the trained
parent was trained again). On a parent with dropout the two are seeded differently, so there the
parent is still trained: the reuse is offered only where it is the same computation.
"""

from __future__ import annotations

import pytest
import torch

from helpers import tiny_spec
from sparsenas.protocol import run
from sparsenas.store import Store
from sparsenas.store.weights import unpack_weights
from test_shared_work import dropout_model  # noqa: F401 (a fixture)

CASES = {
    # a BatchNorm ResNet in the node space (stacked-graph populations), l1-norm and its finetune start
    "resnet-node": dict(model="resnet20", widths=(4,), finders=("dense", "l1-norm"), starts=("finetune",), sparsities=(0.5,)),
    # an MLP in the weight space (the dense trial unmasked, the magnitude trials masked at full size)
    "mlp-weight": dict(finders=("dense", "magnitude"), space="weight", sparsities=(0.5, 0.9)),
}


def _stored(out) -> dict[tuple, tuple]:
    """Every trial's identity -> what it computed: mask, curve, search steps and FLOPs, trained weights."""
    with Store(out) as s:
        got = {}
        for t in s.trials():
            weights = unpack_weights(s.weights(t.key))
            got[(t.finder, t.sparsity, t.seed, t.check)] = (t.key, t.node_mask, t.kept_weights, t.curve, t.search.steps, t.search.flops, weights)
        return got


def _same(a: tuple, b: tuple) -> bool:
    *plain_a, wa = a
    *plain_b, wb = b
    return plain_a == plain_b and wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_grown_run_reuses_the_stored_dense_trial_bit_for_bit(tmp_path, case):
    overrides = dict(CASES[case], seeds=(0,), epochs=2)
    at_once = tmp_path / "at-once"
    run(tiny_spec(**overrides), at_once)  # the finders train their own parent: dense is not stored yet when they search
    grown = tmp_path / "grown"
    run(tiny_spec(**(overrides | dict(finders=("dense",), starts=()))), grown)
    run(tiny_spec(**overrides), grown)  # now the seed's dense trial is stored: loaded, not trained again
    a, b = _stored(at_once), _stored(grown)
    assert a.keys() == b.keys() and len(a) > 1
    for ident in a:
        assert _same(a[ident], b[ident]), ident
    with Store(grown) as s:
        trials = s.trials()
    dense = next(t for t in trials if t.finder == "dense")
    others = [t for t in trials if t.finder != "dense" and t.check != "finetune"]
    # the grown run charged the stored training (its seconds), so it did not train the parent again
    assert others and all(t.search.seconds >= dense.wall_seconds for t in others)
    with Store(at_once) as s:
        dense_once = next(t for t in s.trials() if t.finder == "dense")
        assert any(t.search.seconds != dense_once.wall_seconds for t in s.trials() if t.finder != "dense")


def test_a_dropout_parent_gets_the_same_numbers_grown_or_at_once(tmp_path, dropout_model):
    # there the dense trial (seeded by its key) and the shared parent (seeded by the work) draw
    # different dropout masks: loading the dense trial would change the magnitude trial's numbers

    overrides = dict(model="test-shared-dropout", widths=None, seeds=(0,), epochs=2, sparsities=(0.5,), finders=("dense", "magnitude"))
    run(tiny_spec(**overrides), tmp_path / "at-once")
    run(tiny_spec(**(overrides | dict(finders=("dense",)))), tmp_path / "grown")
    run(tiny_spec(**overrides), tmp_path / "grown")
    a, b = _stored(tmp_path / "at-once"), _stored(tmp_path / "grown")
    assert a.keys() == b.keys() and len(a) == 2
    assert all(_same(a[i], b[i]) for i in a)


def test_dense_trials_trained_together_are_not_reused_and_the_numbers_stay(tmp_path):
    # two seeds' dense trials train as one population, equal to each trained alone only to fp32
    # rounding: reusing them would give a grown (or resumed) run other bits than a run at once
    overrides = dict(CASES["resnet-node"], seeds=(0, 1), epochs=2)
    run(tiny_spec(**overrides), tmp_path / "at-once")
    run(tiny_spec(**(overrides | dict(finders=("dense",), starts=()))), tmp_path / "grown")
    with Store(tmp_path / "grown") as s:
        assert {t.population for t in s.trials()} == {2}
    run(tiny_spec(**overrides), tmp_path / "grown")
    a, b = _stored(tmp_path / "at-once"), _stored(tmp_path / "grown")
    assert a.keys() == b.keys() and len(a) == 6
    for ident in a:
        assert _same(a[ident], b[ident]), ident
