"""Checkpoints in the training loop: validation reads every k steps that may stop members (what
learning-curve search stands on). Reading changes nothing; a stopped member keeps the weights it had
at that step; the members that go on train as they would have without it."""

from __future__ import annotations

import copy

import pytest
import torch

from sparsenas.data import load_dataset
from sparsenas.masks import allocate, compact, random_mask
from sparsenas.models import build_parent
from sparsenas.train import Checkpoints, TrainSpec, train_population

DATA = load_dataset("digits", limit=300)
SPEC = TrainSpec(epochs=2, batch_size=32, lr=0.05)


def _nets(k: int, model: str = "mlp", widths=(32, 16)) -> list:
    parent = build_parent(model, DATA.input_shape, DATA.num_classes, seed=0, widths=widths)
    groups = parent.node_groups()
    gen = torch.Generator().manual_seed(1)
    return [compact(parent, random_mask(groups, allocate(groups, 0.5), gen)) for _ in range(k)]


def _state(net) -> dict:
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("model,widths", [("mlp", (32, 16)), ("resnet20", (4,))])  # BatchNorm: reads in eval mode
def test_checkpoints_that_stop_nobody_change_nothing(model, widths):
    plain, checked = _nets(3, model, widths), _nets(3, model, widths)
    seen: list[tuple[int, list[int], int]] = []

    def stop(step, members, accs):
        seen.append((step, members, len(accs)))
        assert all(0.0 <= a <= 1.0 for a in accs)
        return []

    a = train_population(plain, DATA, SPEC, data_seed=0)
    b = train_population(checked, DATA, SPEC, data_seed=0, checkpoints=Checkpoints(3, stop))
    steps_per_epoch = -(-len(DATA.train) // SPEC.batch_size)
    assert [s for s, _, _ in seen] == list(range(3, 2 * steps_per_epoch + 1, 3))
    assert all(m == [0, 1, 2] and n == 3 for _, m, n in seen)
    assert [r.curve for r in a] == [r.curve for r in b]
    for x, y in zip(plain, checked):
        assert all(torch.equal(x.state_dict()[k], y.state_dict()[k]) for k in x.state_dict())


def test_a_stopped_member_keeps_its_weights_at_that_step_and_the_others_go_on():
    nets = _nets(3)
    alone = [copy.deepcopy(n) for n in nets]
    stop_at = 4
    res = train_population(nets, DATA, SPEC, data_seed=0, checkpoints=Checkpoints(2, lambda step, members, accs: [1] if step == stop_at else []))
    assert [r.status for r in res] == ["done", "stopped", "done"]
    assert res[1].steps == stop_at and res[1].samples == stop_at * SPEC.batch_size
    assert res[0].steps == res[2].steps > stop_at
    # member 1 is what training it alone for `stop_at` steps gives (to fp32 rounding: stacked against solo)
    train_population([alone[1]], DATA, SPEC, data_seed=0, max_steps=stop_at)
    for k, v in alone[1].state_dict().items():
        assert torch.allclose(nets[1].state_dict()[k], v, rtol=1e-4, atol=1e-5), k
    # members 0 and 2 trained on as a population of two would have
    pair = [alone[0], alone[2]]
    train_population(pair, DATA, SPEC, data_seed=0)
    for net, twin in zip((nets[0], nets[2]), pair):
        for k, v in twin.state_dict().items():
            assert torch.allclose(net.state_dict()[k], v, rtol=1e-4, atol=1e-5), k


def test_stopping_everyone_ends_training():
    nets = _nets(2)
    res = train_population(nets, DATA, SPEC, data_seed=0, checkpoints=Checkpoints(1, lambda step, members, accs: members))
    assert [(r.status, r.steps) for r in res] == [("stopped", 1), ("stopped", 1)]
    assert all(r.curve[0].epoch == 0 and len(r.curve) == 1 for r in res)  # the init point only


def test_checkpoints_with_max_steps_read_the_last_step_too():
    steps: list[int] = []
    train_population(_nets(2), DATA, SPEC, data_seed=0, max_steps=6, checkpoints=Checkpoints(3, lambda s, m, a: steps.append(s) or []))
    assert steps == [3, 6]


def test_a_member_that_diverged_is_dropped_at_the_check_and_never_judged():
    nets = _nets(3)
    with torch.no_grad():
        for p in nets[1].parameters():
            p.mul_(1e6)  # finite at init, overflowing within a few steps at lr 5
    spec = TrainSpec(epochs=2, batch_size=32, lr=5.0)
    judged: list[tuple[int, list[int]]] = []
    res = train_population(nets, DATA, spec, data_seed=0, checkpoints=Checkpoints(1, lambda s, m, a: judged.append((s, m)) or []))
    assert res[1].status == "diverged" and 0 < res[1].steps < res[0].steps
    gone = res[1].steps
    # judged up to the step before it was found diverged, never at or after it
    assert all((1 in m) == (s < gone) for s, m in judged)
