"""Populations across seeds: members with different data orders train together, each on its own
seed's batches, and equal their solo twins (to fp32 rounding) on every forward path: the MLP's
stacked GEMMs, vmap, and the BatchNorm graph; with augmentation, weight masks and a diverging member."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from sparsenas.data import Dataset, Split
from sparsenas.masks import allocate, compact, random_mask
from sparsenas.models import build_parent
from sparsenas.models.base import vmapped_forward
from sparsenas.models.mlp import MLP
from sparsenas.train import Population, TrainSpec, train, train_population
from sparsenas.train.stacked_graph import graph_stacked_forward

from test_population import _assert_twins, _images, _members
from test_stacked_graph import _stack


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread on a shared 2-core machine mostly waits
    yield
    torch.set_num_threads(before)


SEEDS = [3, 4, 3, 5]  # two members share seed 3: they must step on the very same batches


def _double(data: Dataset) -> Dataset:
    d = lambda s: Split(s.x.double(), s.y)  # noqa: E731
    return Dataset(data.name, d(data.train), d(data.val), d(data.test), data.num_classes)


@pytest.mark.parametrize(
    "model,widths,spec,dtype",
    [
        ("mlp", (32, 16), TrainSpec(epochs=3, batch_size=32), torch.float32),  # the MLP's own per-member GEMMs
        ("mlp", (32, 16), TrainSpec(epochs=2, batch_size=32, optimizer="adam", lr=0.003, schedule="cosine"), torch.float32),
        ("lenet5", (6, 8, 24, 12), TrainSpec(epochs=2, batch_size=32, lr=0.02, augment="crop-flip"), torch.float32),  # vmap
        # the BatchNorm graph, in float64: a 4-channel ResNet on batches of 32 amplifies fp32 rounding
        # (members and solo twins of one seed drift 0.08 apart in 10 steps), float64 agrees to 1e-15
        ("resnet20", (4,), TrainSpec(epochs=2, batch_size=32, lr=0.05, augment="crop-flip"), torch.float64),
    ],
    ids=["linear-sgd", "linear-adam-cosine", "conv-augment", "resnet-augment"],
)
def test_members_of_several_seeds_equal_their_solo_twins(model, widths, spec, dtype):
    data = _images(n_train=160)  # 160 / 32: every epoch ends on a full batch
    nets = [n.to(dtype) for n in _members(model, data, len(SEEDS), 0.5, widths)]
    data = _double(data) if dtype == torch.float64 else data
    solos = [copy.deepcopy(n) for n in nets]
    other_order = copy.deepcopy(nets[1])
    results = train_population(nets, data, spec, data_seed=SEEDS)
    for net, res, solo, seed in zip(nets, results, solos, SEEDS):
        _assert_twins(net, res, solo, train(solo, data, spec, data_seed=seed), data)
    # the seed really decides: member 1 (seed 4) trained on seed 3's order ends elsewhere
    train(other_order, data, spec, data_seed=SEEDS[0])
    assert not torch.allclose(next(nets[1].parameters()), next(other_order.parameters()), rtol=1e-3, atol=1e-4)


def test_a_short_last_batch_and_weight_masks_across_seeds():
    data = _images(n_train=150)  # the last batch of each epoch is short (150 = 4 x 32 + 22)
    spec = TrainSpec(epochs=2, batch_size=32)
    parent = build_parent("mlp", data.input_shape, data.num_classes, seed=0, widths=(32, 16))
    nets = [copy.deepcopy(parent) for _ in range(3)]
    gen = torch.Generator().manual_seed(2)
    masks = [{"fc1.weight": (torch.rand(parent.fc1.weight.shape, generator=gen) > 0.5).float()} for _ in nets]
    solos = [copy.deepcopy(n) for n in nets]
    results = train_population(nets, data, spec, data_seed=[0, 1, 2], masks=masks)
    for net, res, solo, seed, mask in zip(nets, results, solos, [0, 1, 2], masks):
        alone = train_population([solo], data, spec, data_seed=seed, masks=[mask])[0]
        _assert_twins(net, res, solo, alone, data)
        assert bool((net.fc1.weight[mask["fc1.weight"] == 0] == 0).all())  # masked weights stayed zero


def test_one_seed_given_per_net_is_the_shared_batch_path_to_the_bit():
    data = _images()
    spec = TrainSpec(epochs=2, batch_size=32)
    a = _members("mlp", data, 3, 0.5, (32, 16))
    b = [copy.deepcopy(n) for n in a]
    ra = train_population(a, data, spec, data_seed=7)
    rb = train_population(b, data, spec, data_seed=[7, 7, 7])
    for x, y in zip(a, b):
        for (name, p), (_, q) in zip(x.named_parameters(), y.named_parameters()):
            assert torch.equal(p, q), name
    assert [r.curve for r in ra] == [r.curve for r in rb]


def test_a_diverging_member_of_one_seed_leaves_the_other_seeds_undisturbed():
    data = _images()
    spec = TrainSpec(epochs=3, batch_size=32, lr=0.1)
    nets = _members("mlp", data, 3, 0.5, (32, 16))
    with torch.no_grad():
        nets[1].fc1.weight.mul_(1e18)  # non-finite after the first steps
    healthy = [copy.deepcopy(nets[0]), copy.deepcopy(nets[2])]
    results = train_population(nets, data, spec, data_seed=[0, 1, 2])
    assert results[1].status == "diverged"
    for net, res, solo, seed in zip([nets[0], nets[2]], [results[0], results[2]], healthy, [0, 2]):
        _assert_twins(net, res, solo, train(solo, data, spec, data_seed=seed), data)


def test_a_seed_per_net_is_required():
    data = _images()
    with pytest.raises(ValueError, match="one data seed per net"):
        train_population(_members("mlp", data, 2, 0.5, (32, 16)), data, TrainSpec(epochs=1), data_seed=[0, 1, 2])


def test_the_graph_path_on_per_member_batches_equals_vmap():
    parent = build_parent("resnet20", (1, 12, 12), 10, seed=0, widths=(4,)).double()
    groups = parent.node_groups()
    gen = torch.Generator().manual_seed(1)
    nets = [compact(parent, random_mask(groups, allocate(groups, 0.5), gen)) for _ in range(3)]
    graph = graph_stacked_forward(nets[0], each=True)
    assert graph is not None
    ours, theirs = _stack(nets), _stack(nets)
    xs = torch.randn(3, 6, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ys = torch.randint(0, 10, (3, 6), generator=torch.Generator().manual_seed(0))
    a, b = graph(ours, xs), vmapped_forward(nets[0], each=True)(theirs, xs)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for logits in (a, b):
        F.cross_entropy(logits.flatten(0, 1), ys.flatten()).backward()
    for name, t in ours.items():
        torch.testing.assert_close(t, theirs[name], rtol=0, atol=1e-12, msg=name)  # running statistics alike
        if t.grad is not None:
            torch.testing.assert_close(t.grad, theirs[name].grad, rtol=0, atol=1e-12, msg=name)
    # each member's logits are its own network on its own batch
    nets[1].train()
    torch.testing.assert_close(a[1], nets[1](xs[1]), rtol=0, atol=1e-10)


def test_a_population_steps_on_per_member_batches_and_a_solo_one_too():
    data = _images()
    nets = _members("mlp", data, 1, 0.5, (32, 16))
    pop = Population(nets, TrainSpec())
    x = data.train.x[:8].unsqueeze(0)
    y = data.train.y[:8].unsqueeze(0)
    twin = copy.deepcopy(nets[0])
    torch.testing.assert_close(pop.logits_each(x)[0], twin(x[0]))
    assert pop.step(x, y, 0.1).shape == (1,)


def test_steps_and_samples_are_each_members_own():
    data = _images(n_train=150)
    nets = _members("mlp", data, 3, 0.5, (32, 16))
    results = train_population(nets, data, TrainSpec(epochs=2, batch_size=32), data_seed=[0, 1, 2])
    assert {(r.steps, r.samples) for r in results} == {(10, 300)}  # 2 epochs of 5 batches, 150 samples each


class _TanhMLP(MLP):
    """Rewrites `forward` and `stacked_forward` only: per-member batches must not get MLP's ReLU."""

    def forward(self, x):
        h = x.flatten(1)
        for name in self.names[:-1]:
            h = torch.tanh(getattr(self, name)(h))
        return self.out(h)

    def stacked_forward(self, params, x):
        return vmapped_forward(self)(params, x)


def test_a_subclass_that_rewrote_only_stacked_forward_gets_its_own_forward_per_member():
    nets = [_TanhMLP((1, 4, 4), 3, (5,)) for _ in range(2)]
    pop = Population(nets, TrainSpec())
    xs = torch.randn(2, 6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    got = pop.logits_each(xs)
    for k, net in enumerate(nets):
        torch.testing.assert_close(got[k], net(xs[k]))
