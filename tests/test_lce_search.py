"""lce-search: random-search's candidates, stopped early by a learning-curve forecast.

The stopping rule's bookkeeping is checked with a stand-in forecaster whose answers are known; the
finder itself on tiny data: the same candidates as random-search, every step charged, a never-stopping
search trains every candidate to the budget, a stopping one trains fewer steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from helpers import tiny_spec
from sparsenas.errors import SparsenasError
from sparsenas.data import load_dataset
from sparsenas.finders.lce_search import MIN_READS, RULE, RULES, LceSearchOptions, best_survivor, losers
from sparsenas.models import build_parent
from sparsenas.protocol import RunSpec, make_plan, run
from sparsenas.protocol.find import find
from sparsenas.store import Store


@dataclass(frozen=True)
class Known:
    """A forecast with a known answer: the final value is `mean` give or take `spread` (uniform)."""

    mean: float
    spread: float = 0.05

    def prob_above(self, value: float) -> float:
        return min(1.0, max(0.0, (self.mean + self.spread - value) / (2 * self.spread)))

    def quantile(self, q: float) -> float:
        return self.mean - self.spread + 2 * self.spread * q


def known(xs, ys, x_final):  # the last read is the forecast: a flat curve
    return Known(ys[-1])


def reads(*lasts: float, n: int = MIN_READS) -> dict[int, list[tuple[int, float]]]:
    return {m: [(10 * (i + 1), last) for i in range(n)] for m, last in enumerate(lasts)}


def test_a_clear_loser_is_stopped_and_the_leader_never_is():
    for rule in RULES:
        assert losers(reads(0.9, 0.5, 0.88), 100, 0.05, rule, known) == [1], rule  # 0.5 cannot reach 0.9 give or take 0.05
    assert losers(reads(0.9, 0.86), 100, 0.05, "lead-read", known) == []  # 0.86 + 0.05 > 0.9: still a chance
    assert losers(reads(0.9, 0.86), 100, 0.2, "lead-read", known) == [1]  # P = 0.1 < 0.2


def test_the_rules_differ_in_what_the_leader_is_worth():
    # the leader (last read 0.80) is forecast to end at 0.95 by an optimistic stand-in; the other reads 0.85 now
    def optimistic(xs, ys, x_final):
        return Known(0.95 if ys[-1] == 0.80 else ys[-1])

    r = {0: [(10, 0.5), (20, 0.7), (30, 0.80)], 1: [(10, 0.7), (20, 0.8), (30, 0.85)]}
    assert losers(r, 100, 0.05, "lead-read", optimistic) == []  # each clears the other's last read
    assert losers(r, 100, 0.05, "max-mean", optimistic) == [1]  # 1 cannot reach 0's forecast of 0.95
    assert losers(r, 100, 0.05, "lead-forecast", optimistic) == [1]  # 0.85 +- 0.05 never beats 0.95 +- 0.05
    with pytest.raises(ValueError, match="unknown stopping rule"):
        losers(r, 100, 0.05, "nope", optimistic)


def test_nobody_is_judged_before_enough_reads_and_zero_never_stops():
    assert losers(reads(0.9, 0.1, n=MIN_READS - 1), 100, 0.05, RULE, known) == []
    assert losers(reads(0.9, 0.1), 100, 0.0, RULE, known) == []


def test_the_sole_member_left_is_never_stopped_nor_everyone():
    assert losers(reads(0.3), 100, 0.99, RULE, known) == []
    # each has P < 0.99 of beating the other: the one forecast highest stays
    assert losers(reads(0.5, 0.52), 100, 0.99, "lead-read", known) == [0]


def test_best_survivor_is_the_most_accurate_on_the_full_read():
    reads_ = {0: [(2, 0.5)], 1: [(2, 0.7)], 2: [(1, 0.95)]}  # 2 was stopped early: its read does not count
    assert best_survivor({0: 0.5, 1: 0.7}, reads_) == 1
    assert best_survivor({0: 0.6, 1: 0.6}, reads_) == 0  # earliest on ties
    assert best_survivor({}, {0: [(2, 0.3)], 1: [(1, 0.4)]}) == 1  # no survivor with finite outputs: best last read


@pytest.mark.parametrize(
    "options,message",
    [(dict(lce_stop=1.0), "--lce-stop must be a probability"), (dict(lce_steps=10, lce_every=3), "--lce-steps 10 is not a multiple of --lce-every 3")],
)
def test_bad_options_are_refused_in_one_line(options, message):
    with pytest.raises(SparsenasError, match=message):
        LceSearchOptions(**options).validate()


DATA = load_dataset("digits", limit=300)


def _found(finder: str, **options):
    spec = tiny_spec(finders=(finder,), sparsities=(0.5,), seeds=(0,), **options)
    parent = build_parent(spec.model, DATA.input_shape, DATA.num_classes, 0, spec.widths)
    planned = next(t for t in make_plan(spec, tuple(g.size for g in parent.node_groups())) if t.finder == finder)
    return find(parent, DATA, spec, planned)


def test_its_candidates_are_random_searchs():
    # one candidate: each finder's answer is its first draw
    assert _found("lce-search", candidates=1, lce_steps=4, lce_every=2).mask == _found("random-search", candidates=1, proxy_steps=4).mask


def test_never_stopping_trains_every_candidate_to_the_budget_and_stopping_trains_fewer():
    full = _found("lce-search", candidates=6, lce_steps=12, lce_every=2, lce_stop=0.0)
    assert (full.cost.candidates, full.cost.steps) == (6, 6 * 12)
    assert full.cost.flops > 0 and full.cost.seconds > 0
    eager = _found("lce-search", candidates=6, lce_steps=12, lce_every=2, lce_stop=0.9)
    assert eager.cost.steps < full.cost.steps and eager.cost.flops < full.cost.flops
    again = _found("lce-search", candidates=6, lce_steps=12, lce_every=2, lce_stop=0.9)
    assert (again.mask, again.cost.steps) == (eager.mask, eager.cost.steps)  # deterministic


def test_its_cost_is_every_step_every_read_and_the_final_full_reads():
    from sparsenas.masks import compact, count_flops

    n, steps, every, sub = 4, 8, 2, 50
    f = _found("lce-search", candidates=n, lce_steps=steps, lce_every=every, lce_stop=0.0, lce_val=sub)
    parent = build_parent("mlp", DATA.input_shape, DATA.num_classes, 0, (32, 16))
    per_sample = count_flops(compact(parent, f.mask), DATA.input_shape)
    batch, n_train = tiny_spec().train.batch_size, len(DATA.train)
    per_epoch = -(-n_train // batch)
    samples = sum(min(batch, n_train - (s % per_epoch) * batch) for s in range(steps))  # an epoch's last batch is short
    train = 3.0 * n * samples
    reads = n * (steps // every) * sub + n * len(DATA.val)  # every read on the subset, then each survivor in full
    assert f.cost.flops == pytest.approx(per_sample * (train + reads))


def test_it_runs_in_the_protocol_beside_random_and_stops_some(tmp_path):
    # 3 epochs of 2 steps each (210 training samples, batch 128): 6 steps, read every step, 6 reads
    run(tiny_spec(finders=("dense", "random", "lce-search"), seeds=(0,), epochs=3, candidates=6, lce_steps=6, lce_every=1, lce_stop=0.5), tmp_path)
    trials = [t for t in Store(tmp_path).trials() if t.finder == "lce-search"]
    assert len(trials) == 2 and all(t.status == "done" for t in trials)
    assert all(0 < t.search.steps < 6 * 6 for t in trials)  # someone was stopped at each sparsity


def test_a_budget_past_the_training_is_refused_in_one_line():
    with pytest.raises(SparsenasError, match=r"--lce-steps 400 is more than the \d+ training steps of --epochs 3"):
        _found("lce-search", candidates=2, lce_steps=400, lce_every=20)


def test_a_survivor_whose_outputs_turn_non_finite_on_the_full_read_is_not_picked(monkeypatch):
    # the reads (on the subset) were fine; on the whole split candidate 0 gives a non-finite loss
    from sparsenas.train import Population

    real = Population.evaluate

    def evaluate(self, split):
        losses, accs = real(self, split)
        if len(split) == len(DATA.val) and self.size == 3:
            losses[0], accs[0] = float("nan"), 1.0  # accuracy is never NaN: only the loss can tell
        return losses, accs

    monkeypatch.setattr(Population, "evaluate", evaluate)
    f = _found("lce-search", candidates=3, lce_steps=4, lce_every=2, lce_stop=0.0)
    monkeypatch.undo()
    first = _found("random-search", candidates=1, proxy_steps=4).mask  # candidate 0
    assert f.mask != first


def test_where_nothing_is_forecast_the_extrapolator_stays_out_of_the_key():
    for options in (dict(lce_stop=0.0), dict(lce_steps=60, lce_every=20)):  # never stops; judged at no read before the end
        plan = make_plan(tiny_spec(finders=("lce-search",), **options), (32, 16))
        assert all("decided_by" not in t.spec for t in plan), options


def test_its_keys_carry_the_extrapolator_and_the_rule():
    from sparsenas.predict import VERSION

    plan = make_plan(tiny_spec(finders=("dense", "random", "lce-search")), (32, 16))
    lce = [t for t in plan if t.finder == "lce-search"]
    assert lce and all(t.spec["decided_by"] == {"forecast": VERSION, "rule": f"{RULE}/{MIN_READS}/20"} for t in lce)
    assert not any("decided_by" in t.spec for t in plan if t.finder != "lce-search")
