"""The global top-k count of the pruning-at-init finders: the authors' rule, pinned by hand, checked
against a re-implementation of Tanaka et al.'s SynFlow loop, and entering only the keys it changes.

Their code (ganguli-lab/Synaptic-Flow, `Pruner._global_mask`) prunes int((1 - d) * N) weights at
density d: everything at or below the k-th smallest score. Our old count, round(d * N), kept one
weight fewer whenever the fraction of d * N was below a half, and over SynFlow's 100 rounds the kept
sets drifted apart.
"""

from __future__ import annotations

import copy

import pytest
import torch

from helpers import shipped
from sparsenas.finders import FINDERS, SearchContext, get_finder
from sparsenas.finders import scoring
from sparsenas.finders.scoring import prunable_params
from sparsenas.masks import global_count, weight_mask_from_scores
from sparsenas.models import build_parent
from sparsenas.protocol import RunSpec, trial_key, trial_spec
from sparsenas.train import TrainSpec


def test_floor_keeps_what_the_authors_int_leaves():
    # N = 10, s = 0.36: the authors prune int(0.36 * 10) = int(3.5999999999999996) = 3 and keep 7;
    # round((1 - 0.36) * 10) = round(6.4) keeps 6
    assert global_count((10,), 0.36, "round") == 6
    assert global_count((4, 6), 0.36, "floor") == 7
    # their float expression as is: 0.29 * 100 = 28.999999999999996, so 72 are kept, not 71
    assert (global_count((100,), 0.29, "round"), global_count((100,), 0.29, "floor")) == (71, 72)
    # where (1-s)*N is whole both rules agree (0.5 * 14 = 7)
    assert global_count((14,), 0.5, "round") == global_count((14,), 0.5, "floor") == 7
    with pytest.raises(ValueError, match="top-k rule"):
        global_count((10,), 0.5, "ceil")


def test_floor_mask_keeps_the_seven_best_of_ten():
    scores = {"a": torch.tensor([[5.0, 1.0, 7.0], [3.0, 9.0, 0.0]]), "b": torch.tensor([[2.0, 8.0, 4.0, 6.0]])}
    m = weight_mask_from_scores(scores, 0.36, "global", "floor")
    # the three lowest (0, 1, 2) go; 3..9 stay
    assert m.tensors["a"].tolist() == [[True, False, True], [True, True, False]]
    assert m.tensors["b"].tolist() == [[False, True, True, True]]
    # round keeps 6: 3 goes too
    assert m.kept_counts() == (4, 3) and weight_mask_from_scores(scores, 0.36, "global").kept_counts() == (3, 3)
    # per-layer counts keep rounding: 0.64 * 6 = 3.84 -> 4, 0.64 * 4 = 2.56 -> 3
    assert weight_mask_from_scores(scores, 0.36, "per-layer", "floor").kept_counts() == (4, 3)


@pytest.mark.parametrize("finder", [n for n in shipped(FINDERS) if get_finder(n).scored and "weight" in get_finder(n).spaces])
def test_every_scored_finder_counts_a_global_top_k_as_it_declares(finder, digits_small):
    """A finder's declared `global_topk` (what its trial keys say) is the count its masks have."""
    parent = build_parent("mlp", digits_small.input_shape, 10, 0, (8, 4))
    sizes = tuple(p.numel() for p in prunable_params(parent).values())  # 512 + 32 + 40 = 584
    s = 0.9  # 0.9 * 584 = 525.6: "floor" keeps 59, "round" 58
    assert global_count(sizes, s, "floor") != global_count(sizes, s, "round")
    f = get_finder(finder)
    options = {"score_samples": 16, "synflow_iterations": 5, "imp_rate": 0.5, "rewind_steps": 0}
    ctx = SearchContext(parent, digits_small, TrainSpec(epochs=1, batch_size=64), s, 0, torch.Generator().manual_seed(0),
                        {k: options[k] for k in f.options}, space="weight", allocation="global")
    assert sum(f.find(ctx).mask.kept_counts()) == global_count(sizes, s, f.global_topk)


def authors_synflow(parent: torch.nn.Module, input_shape: tuple[int, ...], density: float, rounds: int = 100) -> dict[str, torch.Tensor]:
    """Tanaka et al.'s `prune_loop` with their SynFlow pruner and global scope, rewritten for this test.

    Masked layers use weight * mask, so a pruned weight's gradient, and score, is zero; a round's
    density is d ** ((epoch + 1) / rounds); the int((1 - density) * N) lowest scores are pruned by
    threshold (k-th smallest, `kthvalue`), keeping scores strictly above it. float64 like our finder
    (their default is float32): this test checks the loop and the count, not the precision.
    """
    net = copy.deepcopy(parent).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()  # linearize: |θ| for every parameter, biases included
    weights = prunable_params(net)
    raw = {n: w.detach().clone() for n, w in weights.items()}
    masks = {n: torch.ones_like(w) for n, w in raw.items()}
    for epoch in range(rounds):
        with torch.no_grad():
            for n, w in weights.items():
                w.copy_(raw[n] * masks[n])
        r = net(torch.ones(1, *input_shape, dtype=torch.float64)).sum()
        grads = torch.autograd.grad(r, list(weights.values()))
        # d R / d raw weight = (d R / d masked weight) * mask; score = |grad * raw weight|
        scores = {n: (g * masks[n] * raw[n]).abs() for n, g in zip(weights, grads)}
        flat = torch.cat([t.flatten() for t in scores.values()])
        k = int((1.0 - density ** ((epoch + 1) / rounds)) * flat.numel())
        if k >= 1:
            threshold = torch.kthvalue(flat, k).values
            masks = {n: (t > threshold).double() for n, t in scores.items()}
    return {n: m.bool() for n, m in masks.items()}


def _jaccard(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    x, y = (torch.cat([t.flatten() for t in m.values()]) for m in (a, b))
    return int((x & y).sum()) / int((x | y).sum())


@pytest.mark.parametrize("sparsity", [0.99, 0.999])
def test_synflow_global_weight_mask_is_the_authors(sparsity, digits_small, monkeypatch):
    parent = build_parent("mlp", digits_small.input_shape, 10, 0, (64, 32))  # 6,464 prunable weights
    ctx = SearchContext(parent, digits_small, TrainSpec(), sparsity, 0, torch.Generator(), {"synflow_iterations": 100},
                        space="weight", allocation="global")
    ours = get_finder("synflow").find(ctx).mask.tensors
    # the density their code gets is the one our sparsity stands for, as the same float
    theirs = authors_synflow(parent, digits_small.input_shape, 1.0 - sparsity)
    # no score ties at a threshold on this net (their rule drops every weight tied with the k-th
    # smallest, ours keeps exactly the count, lower index first), so the sets are the same
    assert [int(t.sum()) for t in ours.values()] == [int(t.sum()) for t in theirs.values()]
    assert _jaccard(ours, theirs) == 1.0
    # the test can see the difference: the old rounding drifts from their mask
    monkeypatch.setattr(type(get_finder("synflow")), "global_topk", "round")
    assert _jaccard(get_finder("synflow").find(ctx).mask.tensors, theirs) < 0.9


TRAIN = TrainSpec(epochs=10, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.0, schedule="cosine")


def test_only_global_weight_trials_of_scored_finders_get_new_keys():
    """Stored runs are users' data: the count change re-keys exactly the trials whose masks change."""
    glob = RunSpec(space="weight", allocation="global", train=TRAIN)
    n = 64 * 300 + 300 * 100 + 100 * 10  # the digits mlp (300, 100)'s prunable weights
    spec = trial_spec(glob, (300, 100), "synflow", 0.99, 0, prunable=n)
    assert spec["topk"] == "floor"
    assert trial_key(spec) == "e357fd1fcc8f05fb"  # before the change (no "topk"): a009e51504097c1b
    assert trial_key(trial_spec(glob, (300, 100), "synflow", 0.99, 0, check="shuffle", prunable=n)) == "2fd9baa9b6cd6fa0"
    # one-shot finders: a new key only where the count changed. At 0.123, 0.877 * 50200 = 44025.4
    # keeps 44025 rounded and 44026 by the papers' rule; at 0.5, 0.9 and 0.95 both agree, and the
    # keys are those the code before the change gave (computed at c3d3b18)
    assert trial_spec(glob, (300, 100), "snip", 0.123, 0, prunable=n)["topk"] == "floor"
    assert trial_key(trial_spec(glob, (300, 100), "snip", 0.123, 0, prunable=n)) != "5163f0feb1f9ebbb"
    assert trial_key(trial_spec(glob, (300, 100), "snip", 0.5, 0, prunable=n)) == "fd81ddeb94e95405"
    assert trial_key(trial_spec(glob, (300, 100), "grasp", 0.9, 0, prunable=n)) == "639dad9ba62b32bd"
    assert trial_key(trial_spec(glob, (300, 100), "magnitude", 0.95, 0, prunable=n)) == "bed1919ae1e84572"
    # SynFlow at 0.5: the final count agrees, but 47 of its 100 rounds do not, so its masks may differ
    assert trial_spec(glob, (300, 100), "synflow", 0.5, 0, prunable=n)["topk"] == "floor"
    with pytest.raises(ValueError, match="prunable weight count"):
        trial_spec(glob, (300, 100), "snip", 0.5, 0)
    # keys computed with the code before the change, unchanged: per-layer weight trials, global
    # node-space trials, and global trials of finders that count their own way (imp) or rank nothing
    per_layer = RunSpec(space="weight", train=TRAIN)
    assert trial_key(trial_spec(per_layer, (300, 100), "synflow", 0.99, 0)) == "c60c77dda07deaeb"
    node = RunSpec(space="node", allocation="global", train=TRAIN)
    assert trial_key(trial_spec(node, (300, 100), "synflow", 0.99, 0)) == "9b8b9564ef494949"
    assert trial_key(trial_spec(glob, (300, 100), "imp", 0.99, 0)) == "6fc4919f50b41a24"
    assert trial_key(trial_spec(glob, (300, 100), "random", 0.99, 0)) == "817a3beca323e498"


def test_a_users_finder_keeps_its_count_masks_and_keys(digits_small):
    """A finder of a user's that ranks through `to_mask` and never declared `global_topk` keeps the
    rounding it always had: its masks and its keys stay those of its stored runs."""
    from sparsenas.finders.base import Finder, Found, register

    @register
    class InitMagnitude(Finder):
        name, help, spaces, scored = "test-topk-init-magnitude", "test: |θ0| ranked through to_mask", ("weight",), True

        def find(self, ctx: SearchContext) -> Found:
            return Found(scoring.to_mask(ctx, {n: w.detach().abs() for n, w in prunable_params(ctx.parent).items()})[0])

    parent = build_parent("mlp", digits_small.input_shape, 10, 0, (300, 100))
    n = sum(w.numel() for w in prunable_params(parent).values())
    ctx = SearchContext(parent, digits_small, TrainSpec(), 0.123, 0, torch.Generator(), get_finder(InitMagnitude.name).Options(),
                        space="weight", allocation="global")
    kept = sum(int(t.sum()) for t in get_finder(InitMagnitude.name).find(ctx).mask.tensors.values())
    assert kept == global_count((n,), 0.123, "round") == global_count((n,), 0.123, "floor") - 1
    glob = RunSpec(space="weight", allocation="global", finders=(InitMagnitude.name,), train=TRAIN)
    assert "topk" not in trial_spec(glob, (300, 100), InitMagnitude.name, 0.123, 0, prunable=n)
