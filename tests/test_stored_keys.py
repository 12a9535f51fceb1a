"""Finders declaring their own options changed no stored data: trial keys, the trial specs stored
beside them and the spec a run directory is bound to are what the code before that change computed.

The pinned values were computed at commit d2bfe50 (RunSpec with the 13 finder fields) by this very
module's `_digests` (the weight-global case since: see its comment). A mismatch here means every stored run would re-train: bump HASH_VERSION on
purpose, never by accident.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from helpers import shipped
from sparsenas.finders import FINDERS, get_finder
from sparsenas.protocol import RunSpec, make_plan

NODE = ("dense", "random", "random-search", "imp", "snip", "grasp", "synflow", "magnitude", "evolution", "halving", "nsga2")
WEIGHT = ("dense", "random", "imp", "snip", "grasp", "synflow", "magnitude")
EVERY_OPTION = dict(candidates=7, proxy_steps=3, imp_rate=0.3, rewind_steps=5, score_samples=64, synflow_iterations=10,
                    evo_population=8, generations=2, halving_eta=2, halving_steps=4, objectives=("accuracy", "params"),
                    front_size=3, nsga_steps=7)
CASES = {
    "default": dict(),
    "every-finder": dict(finders=NODE, sparsities=(0.5, 0.9), seeds=(0, 1), checks=("shuffle", "reinit", "invert"), controls=2),
    "options": dict(finders=NODE, sparsities=(0.8,), seeds=(3,), **EVERY_OPTION),
    "weight-global": dict(finders=WEIGHT, space="weight", allocation="global", sparsities=(0.9, 0.99), seeds=(0,),
                          score_samples=32, imp_rate=0.5, checks=("invert",)),
    "objectives-only": dict(objectives=("accuracy", "flops"), seeds=(0,), sparsities=(0.5,), front_size=2),
}
# case -> (trials, first three keys, digest of every key, of every stored trial spec's JSON, of identity())
PINNED = {
    "default": (45, ["b92aba4fa17e4506", "c4b5a880bfda7854", "b97a650a9f71b8ed"], "9023df33c872c55d", "4fa0621a5726d6d8", "ca85042f7d3063f0"),
    "every-finder": (150, ["b92aba4fa17e4506", "c4b5a880bfda7854", "ff22e01cb2f7dcfe"], "6cfe7f0716349d94", "ae109b099ad3199d", "1e198cf50ce4bc68"),
    "options": (16, ["8d507c0fe09879fa", "05a233003a495ec4", "e572db35fdd42d6b"], "6f3f05a598dc7392", "ded2fe079e3db376", "f3d748791d4c84a4"),
    # re-pinned on purpose when `topk` entered only the keys whose count changed: every key here is
    # c3d3b18's (before the count change) except snip, grasp, magnitude at 0.9 (646.4 weights: 646
    # rounded, 647 by the papers' rule) and synflow at both, which carry `topk` as at d2bfe50
    "weight-global": (23, ["b92aba4fa17e4506", "e90989256e57c8a4", "be62e1b4bcb2f694"], "f34ba9fdcdefbec7", "897c41efa6121911", "c330a977d444d231"),
    "objectives-only": (7, ["b92aba4fa17e4506", "c4b5a880bfda7854", "b97a650a9f71b8ed"], "0c305a43380f5384", "063634086f41a65f", "8867244c7b401293"),
}
DEFAULT_IDENTITY = {
    "dataset": "digits", "limit": None, "model": "mlp", "widths": None, "finders": ["dense", "random", "random-search"],
    "space": "node", "sparsities": [0.5, 0.8, 0.9, 0.95], "allocation": "per-layer", "checks": [], "seeds": [0, 1, 2, 3, 4],
    "candidates": 20, "proxy_steps": 0, "imp_rate": 0.2, "rewind_steps": 0, "score_samples": 256, "synflow_iterations": 100,
    "evo_population": 16, "generations": 10, "halving_eta": 3, "halving_steps": 8, "objectives": [], "front_size": 6,
    "nsga_steps": 50, "controls": 1,
    "train": {"epochs": 30, "batch_size": 64, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "schedule": "constant"},
}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# options of finders shipped after these pins, and options declared "later" on a pinned finder (nsga2's
# predictor: at its default it stays out of the trial keys, finders/options.py; the pins above show
# it): a run directory bound before them lacks their keys and still binds (binding compares an option
# only where a finder reading it is in both runs; tested in test_a_store_made_before_an_option_existed_resumes),
# so they are left out of the pinned identity
ADDED_AFTER_PIN = {"bn_penalty": 1e-4, "predictor": "none", "predictor_pool": 100, "lce_steps": 200, "lce_every": 20, "lce_val": 1000, "lce_stop": 0.05}


def _shipped_identity(spec: RunSpec) -> dict:
    # a finder a test module registers adds its options; the shipped finders' part must not change
    foreign = {k for n in FINDERS.names() if n not in shipped(FINDERS) for k in get_finder(n).options}
    return {k: v for k, v in spec.identity().items() if k not in foreign and k not in ADDED_AFTER_PIN}


def _digests(spec: RunSpec) -> tuple:
    plan = make_plan(spec, (64, 32), prunable=64 * 64 + 64 * 32 + 32 * 10)  # the digits mlp (64, 32)
    # the trial specs' JSON unsorted: the options' order inside each stored spec is pinned too
    return (len(plan), [t.key for t in plan[:3]], _digest(",".join(t.key for t in plan)), _digest(json.dumps([t.spec for t in plan])),
            _digest(json.dumps(_shipped_identity(spec), sort_keys=True)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_trial_keys_specs_and_identity_are_as_before(case):
    assert _digests(RunSpec(**CASES[case]).validate()) == PINNED[case]


def test_default_identity_is_the_stored_spec_of_before():
    # dict equality, as binding compares it; the keys' order in the JSON is not compared anywhere
    assert _shipped_identity(RunSpec()) == DEFAULT_IDENTITY
    assert {k: RunSpec().identity()[k] for k in ADDED_AFTER_PIN} == ADDED_AFTER_PIN


def test_a_store_made_before_an_option_existed_resumes(tmp_path):
    # the stored spec as a run made before bn-scale existed holds it: without its option; it resumes
    # with nothing to run, and grows to bn-scale (which reads the option) without a refusal
    from helpers import tiny_spec
    from sparsenas.protocol import run
    from sparsenas.store import Store

    small = dict(model="resnet20", widths=(4,), limit=64, epochs=1, sparsities=(0.5,), seeds=(0,))
    run(tiny_spec(finders=("dense", "random"), **small), tmp_path)
    with Store(tmp_path) as store:
        store.set_spec({k: v for k, v in store.spec().items() if k not in ADDED_AFTER_PIN})
    again = run(tiny_spec(finders=("dense", "random"), **small), tmp_path)
    assert (again.planned, again.skipped, again.ran) == (2, 2, 0)
    grown = run(tiny_spec(finders=("dense", "random", "bn-scale"), **small), tmp_path)
    assert (grown.planned, grown.skipped, grown.ran) == (3, 2, 1)
