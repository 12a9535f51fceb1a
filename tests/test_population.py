"""Population training: members equal their solo twins (to fp32 rounding), divergence stays local,
the runner groups finders and controls by shape, and memory bounds the population size."""

from __future__ import annotations

import copy

import pytest
import torch

from sparsenas.data import Dataset, Split
from sparsenas.masks import allocate, compact, random_mask
from sparsenas.models import build_parent
from sparsenas.protocol import run
from sparsenas.store import Store
from sparsenas.train import Population, TrainSpec, population_size, train, train_population
from sparsenas.train import memory

from helpers import tiny_spec


def _images(n_train: int = 192, n_eval: int = 64, side: int = 16) -> Dataset:
    """Learnable generated images: the class sets the mean brightness of one of 4 quadrants."""
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        y = torch.randint(0, 4, (n,), generator=g)
        x = torch.randn(n, 1, side, side, generator=g) * 0.5
        h = side // 2
        for c in range(4):
            r, q = divmod(c, 2)
            x[y == c, :, r * h : (r + 1) * h, q * h : (q + 1) * h] += 1.0
        return Split(x, y)

    return Dataset("quadrants", split(n_train), split(n_eval), split(n_eval), 4)


def _members(model: str, data: Dataset, k: int, sparsity: float, widths=None) -> list:
    parent = build_parent(model, data.input_shape, data.num_classes, seed=0, widths=widths)
    groups = parent.node_groups()
    gen = torch.Generator().manual_seed(1)
    return [compact(parent, random_mask(groups, allocate(groups, sparsity), gen)) for _ in range(k)]


def _assert_twins(pop_net, pop_result, solo_net, solo_result, data: Dataset) -> None:
    for (name, a), (_, b) in zip(pop_net.named_parameters(), solo_net.named_parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name
    assert pop_result.status == solo_result.status
    assert [e.epoch for e in pop_result.curve] == [e.epoch for e in solo_result.curve]
    for p, s in zip(pop_result.curve, solo_result.curve):
        assert p.val_loss == pytest.approx(s.val_loss, rel=1e-4)
        assert p.train_loss == pytest.approx(s.train_loss, rel=1e-4)
        # an accuracy may move by one sample whose logits tie to fp32 rounding
        assert abs(p.val_acc - s.val_acc) <= 1 / len(data.val) + 1e-12
    epoch_of_min = lambda r: min(r.curve[1:], key=lambda e: (e.val_loss, e.epoch)).epoch  # noqa: E731
    assert epoch_of_min(pop_result) == epoch_of_min(solo_result)  # the early-stopping epoch


@pytest.mark.parametrize(
    "model,widths,spec",
    [
        ("mlp", (32, 16), TrainSpec(epochs=4, batch_size=32)),  # the stacked-GEMM path
        ("mlp", (32, 16), TrainSpec(epochs=3, batch_size=32, optimizer="adam", lr=0.003, schedule="cosine")),
        ("lenet5", (6, 8, 24, 12), TrainSpec(epochs=3, batch_size=32, lr=0.02)),  # the vmapped conv path
    ],
    ids=["linear-sgd", "linear-adam-cosine", "conv-sgd"],
)
def test_population_members_equal_their_solo_twins(model, widths, spec):
    data = _images()
    nets = _members(model, data, 4, 0.5, widths)
    solos = [copy.deepcopy(n) for n in nets]
    pop_results = train_population(nets, data, spec, data_seed=3)
    for net, res, solo in zip(nets, pop_results, solos):
        _assert_twins(net, res, solo, train(solo, data, spec, data_seed=3), data)
    # and the members really trained: weights moved and validation loss fell
    assert all(r.curve[-1].val_loss < r.curve[0].val_loss for r in pop_results)


def test_one_diverging_member_leaves_the_others_undisturbed():
    data = _images()
    spec = TrainSpec(epochs=3, batch_size=32, lr=0.1)
    nets = _members("mlp", data, 4, 0.5, (32, 16))
    with torch.no_grad():
        nets[1].fc1.weight.mul_(1e18)  # logits ~1e18: finite at init, non-finite after the first steps
    healthy = [copy.deepcopy(n) for i, n in enumerate(nets) if i != 1]
    results = train_population(nets, data, spec, data_seed=0)
    assert results[1].status == "diverged"
    assert [e.epoch for e in results[1].curve] == [0]  # its init point; no epoch with broken weights
    assert results[1].steps == results[0].steps // spec.epochs  # it left the population after epoch 1
    # the others equal a population that never held the diverging member, and a solo run each
    without = train_population(healthy, data, spec, data_seed=0)
    for net, res, twin, twin_res in zip([nets[0], nets[2], nets[3]], [results[0], results[2], results[3]], healthy, without):
        assert res.status == "done" and len(res.curve) == spec.epochs + 1
        _assert_twins(net, res, twin, twin_res, data)


def test_max_steps_stops_every_member_and_records_no_curve():
    data = _images()
    nets = _members("mlp", data, 3, 0.8, (32, 16))
    before = [n.fc1.weight.clone() for n in nets]
    rs = train_population(nets, data, TrainSpec(epochs=5, batch_size=32), data_seed=0, max_steps=7)
    assert [(r.steps, r.samples, r.curve) for r in rs] == [(7, 7 * 32, ())] * 3
    assert all(not torch.equal(b, n.fc1.weight) for b, n in zip(before, nets))


def test_members_must_share_a_shape():
    data = _images()
    a = _members("mlp", data, 1, 0.5, (32, 16))[0]
    b = _members("mlp", data, 1, 0.8, (32, 16))[0]
    with pytest.raises(ValueError, match="share one shape"):
        Population([a, b], TrainSpec())


def test_runner_groups_finders_and_controls_by_shape_and_matches_training_alone(tmp_path):
    spec = tiny_spec(controls=3, seeds=(0,))
    run(spec, tmp_path / "pop")
    pop = {t.key: t for t in Store(tmp_path / "pop").trials()}
    # at each sparsity: 3 random controls and random-search's pick share a shape -> one population
    assert sorted((t.finder, t.control, t.population) for t in pop.values() if t.sparsity == 0.5) == [
        ("random", 0, 4), ("random", 1, 4), ("random", 2, 4), ("random-search", 0, 4)]
    assert [t.population for t in pop.values() if t.finder == "dense"] == [1]
    assert len({t.node_mask for t in pop.values() if t.finder == "random"}) == 6  # distinct controls
    run(tiny_spec(controls=3, seeds=(0,), population_cap=1), tmp_path / "alone")
    alone = {t.key: t for t in Store(tmp_path / "alone").trials()}
    assert alone.keys() == pop.keys() and {t.population for t in alone.values()} == {1}
    for key, t in pop.items():
        a = alone[key]
        assert t.node_mask == a.node_mask and t.min_val_loss_epoch == a.min_val_loss_epoch
        assert t.curve[-1].val_loss == pytest.approx(a.curve[-1].val_loss, rel=1e-4)


def test_a_population_cap_cuts_each_shape_into_consecutive_slices(tmp_path):
    run(tiny_spec(controls=3, seeds=(0,), sparsities=(0.5,), population_cap=3), tmp_path)
    sizes = sorted((t.finder, t.control, t.population) for t in Store(tmp_path).trials() if t.finder != "dense")
    # plan order at 0.5: random 0, 1, 2, random-search -> slices [r0, r1, r2] and [random-search]
    assert sizes == [("random", 0, 3), ("random", 1, 3), ("random", 2, 3), ("random-search", 0, 1)]


def test_control_zero_keeps_its_key_and_more_controls_grow_a_run(tmp_path):
    run(tiny_spec(seeds=(0,)), tmp_path)
    first = {t.key for t in Store(tmp_path).trials()}
    run(tiny_spec(seeds=(0,), controls=2), tmp_path)
    grown = Store(tmp_path).trials()
    assert first < {t.key for t in grown}
    assert sorted(t.control for t in grown if t.finder == "random") == [0, 0, 1, 1]


def test_population_size_follows_memory_and_the_cap(monkeypatch):
    net = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0)
    spec = TrainSpec(batch_size=128)
    cpu = torch.device("cpu")
    per_member = memory.member_bytes(net, (1, 28, 28), spec)
    assert population_size(net, (1, 28, 28), spec, cpu, cap=16) == 16
    eval_reserve = 4 * 2 * memory.activation_floats(net, (1, 28, 28)) * memory.EVAL_ROWS  # an MLP: every activation
    # a machine whose planning budget holds exactly 5 members after the evaluation reserve
    monkeypatch.setattr(memory, "total_memory", lambda d: int((eval_reserve + 5 * per_member) / memory.CPU_FRACTION) + 1)
    assert population_size(net, (1, 28, 28), spec, cpu, cap=128) == 5
    monkeypatch.setattr(memory, "total_memory", lambda d: 1)
    assert population_size(net, (1, 28, 28), spec, cpu, cap=128) == 1  # never below one


def test_the_evaluation_reserve_counts_live_activations_not_all_of_them(monkeypatch):
    # resnet20 on 28x28: all its activations for 32768 evaluated rows would be 89 GiB, which left
    # every ResNet population on a 24 GiB machine a population of one; its widest output x 6 is 9.2 GiB
    net = build_parent("resnet20", (1, 28, 28), 10, seed=0)
    assert memory.widest_activation(net, (1, 28, 28)) == 16 * 28 * 28
    assert memory.eval_floats(net, (1, 28, 28)) == memory.EVAL_LIVE * 16 * 28 * 28
    assert 4 * memory.eval_floats(net, (1, 28, 28)) * memory.EVAL_ROWS < 10 * 2**30
    spec = TrainSpec(batch_size=128, momentum=0.9)
    monkeypatch.setattr(memory, "total_memory", lambda d: 24 * 2**30)
    assert population_size(net, (1, 28, 28), spec, torch.device("cpu"), cap=128) >= 2


def test_sessions_record_peak_memory(tmp_path):
    summary = run(tiny_spec(seeds=(0,), sparsities=(0.5,)), tmp_path)
    sessions = Store(tmp_path).sessions()
    assert len(sessions) == 1 and sessions[0]["trials"] == summary.ran == 3
    assert sessions[0]["peak_memory_bytes"] == summary.peak_memory > 10 * 2**20
    assert sessions[0]["populations"] == summary.populations == 2  # dense alone; random + random-search
    run(tiny_spec(seeds=(0,), sparsities=(0.5,)), tmp_path)  # nothing left to train: no new session
    assert len(Store(tmp_path).sessions()) == 1


@pytest.mark.parametrize("values,message", [
    ({"controls": 0}, "--controls must be at least 1"),
    ({"controls": 5000}, "more than 1000 random controls"),
    ({"population_cap": 0}, "--population-cap must be at least 1"),
])
def test_bad_population_options_are_named(values, message):
    from sparsenas.errors import SparsenasError
    from sparsenas.protocol.spec import build_spec

    with pytest.raises(SparsenasError, match=message):
        build_spec(values)


def test_a_parent_with_dropout_trains_as_a_population_and_evaluates_without_it():
    from torch import nn

    from sparsenas.models import NodeGroup, Parent, TensorSlice

    class DropMLP(Parent):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(256, 16)
            self.drop = nn.Dropout(0.5)
            self.out = nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.drop(torch.relu(self.fc(x.flatten(1)))))

        def node_groups(self) -> list[NodeGroup]:
            return [NodeGroup("fc", 16, (TensorSlice("fc.weight", 0), TensorSlice("fc.bias", 0)), (TensorSlice("out.weight", 1),))]

    torch.manual_seed(0)
    data = _images()
    nets = [DropMLP() for _ in range(3)]
    results = train_population(nets, data, TrainSpec(epochs=2, batch_size=32), data_seed=0)
    assert [r.status for r in results] == ["done"] * 3
    pop = Population(nets, TrainSpec())
    assert pop.evaluate(data.val) == pop.evaluate(data.val)  # no dropout at evaluation
    assert nets[0].training  # the module's mode is restored


def test_an_interrupted_session_is_still_logged(tmp_path):
    """Ctrl-C after the first population: its trials are stored and the session says so."""
    seen = []

    def stop_after_first(done, total, trial, record):
        if record is not None:
            seen.append(record)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tiny_spec(seeds=(0,), sparsities=(0.5,)), tmp_path, on_trial=stop_after_first)
    [session] = Store(tmp_path).sessions()
    assert session["trials"] == 1 and len(Store(tmp_path)) == 1  # the dense parent, stored whole


@pytest.mark.parametrize("classes, dtype", [(10, torch.float32), (3, torch.float32), (10, torch.float64), (100, torch.float32)])
@pytest.mark.parametrize("k, b, own_labels", [(6, 100, False), (6, 100, True), (1, 600, False), (2, 300, True), (4, 1000, False)])
def test_member_losses_give_the_bits_of_cross_entropy_over_rows(classes, dtype, k, b, own_labels):
    """Whichever layout member_losses takes on this CPU (k*b >= 512 here, so the (K, C, B) one
    wherever its probe passes), loss and gradient are bit for bit those of one cross-entropy over
    the K*B rows (the formulation every stored trial was trained with), the gradient's layout too,
    for logits laid out (K, B, C) and as the transposed view a stacked MLP gives."""
    from torch.nn import functional as F

    from sparsenas.train.loss import member_losses

    g = torch.Generator().manual_seed(1)
    for transposed in (False, True):
        values = torch.randn(k, b, classes, generator=g, dtype=dtype) * 8
        y = torch.randint(0, classes, (k, b) if own_labels else (b,), generator=g)
        labels = y.reshape(-1) if own_labels else y.repeat(k)
        for reduction in ("mean", "sum"):
            grads, losses = [], []
            for formula in ("rows", "member_losses"):
                leaf = (values.transpose(1, 2).contiguous() if transposed else values.clone()).requires_grad_()
                logits = leaf.transpose(1, 2) if transposed else leaf
                if formula == "rows":
                    per = F.cross_entropy(logits.reshape(k * b, classes), labels, reduction="none").view(k, b)
                    loss = per.mean(1) if reduction == "mean" else per.sum(1)
                else:
                    loss = member_losses(logits, y, reduction)
                (grad,) = torch.autograd.grad(loss.sum(), leaf)
                losses.append(loss)
                grads.append(grad)
            assert torch.equal(losses[0], losses[1])
            assert torch.equal(grads[0], grads[1]) and grads[0].stride() == grads[1].stride()


@pytest.mark.parametrize("k, batch, own_batches, shrink", [(6, 128, False, False), (6, 128, True, False), (1, 512, False, False), (2, 512, True, True)])
def test_populations_train_to_the_bits_of_the_rows_cross_entropy(monkeypatch, k, batch, own_batches, shrink):
    """Equal loss values are not enough (train/loss.py): the gradient must reach the network laid out as the rows'
    formulation gives it, or the last GEMM rounds its weight gradient otherwise (it once did, for
    several members, and then for one: a net alone, or a population shrunk to one, at batch 512)."""
    from torch.nn import functional as F

    from sparsenas.train import stacked

    def rows(logits, y, reduction="mean"):
        k, b, c = logits.shape
        labels = y.reshape(k * b) if y.dim() == 2 else y.repeat(k)
        per = F.cross_entropy(logits.reshape(k * b, c), labels, reduction="none").view(k, b)
        return per.mean(1) if reduction == "mean" else per.sum(1)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (600,), generator=g)
    nets = [build_parent("mlp", (1, 8, 8), 10, widths=(40, 20), seed=s) for s in range(k)]
    finals = []
    for loss in (rows, stacked.member_losses):
        monkeypatch.setattr(stacked, "member_losses", loss)
        pop = Population(copy.deepcopy(nets), TrainSpec(lr=0.1, momentum=0.9))
        order = torch.Generator().manual_seed(1)
        for step in range(6):
            if shrink and step == 2:
                pop.keep([0])  # the others diverged or stopped: one member trains on
            idx = torch.randint(0, 600, (pop.size, batch) if own_batches else (batch,), generator=order)
            pop.step(x[idx], y[idx], 0.1)
        finals.append({n: t.detach().clone() for n, t in pop.params.items()})
    assert all(torch.equal(finals[0][n], finals[1][n]) for n in finals[0])
