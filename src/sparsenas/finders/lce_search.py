"""`lce-search`: random search that stops the candidates a learning-curve forecast says will lose.

The candidates are random-search's own (drawn by `random_mask` from random-search's generator, so the
two finders are compared on the same masks: `Finder.draws_as`). They train together as one
population on the seed's data order for a budget of `lce_steps` steps, their validation accuracy read
every `lce_every` steps on `lce_val` validation samples (a fixed random subset per seed: on
Fashion-MNIST LeNet-300-100 a read of the whole split cost 65% of the 20 steps between two reads).
From the `MIN_READS`-th read on, each candidate's partial curve is extrapolated to the budget's end
(`predict.forecast`, a predictive distribution), and a candidate is stopped when the probability that
it ends above the leader (the other candidate with the best read, its own forecast uncertain too:
`RULE`) falls below `lce_stop`. That is the rule LC-PFN uses to stop training runs (Adriaensen et al.
2023), with the leader in place of the best finished run, since the population trains in lockstep.
The survivors train to the budget and are read on the whole validation split; the most accurate is
kept.

With `lce_stop` 0 nothing stops: every candidate is trained to the full budget and the pick is by
its measured accuracy, the reference a stopping rule is measured against. The whole search is
charged: every step each candidate took, every validation read, and the forecasts' seconds (which,
at 20 candidates on a small net, can outweigh the training saved: benchmarks/lce_stopping.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..data import Split
from ..errors import SparsenasError
from ..masks import allocate, compact, count_flops, random_mask
from ..measures import SearchCost
from ..predict import VERSION, Forecast, forecast
from ..train import Checkpoints, Population, total_steps, train_population
from .base import Finder, FinderOptions, Found, SearchContext, register

MIN_READS = 3  # reads before a curve is judged (3-parameter families fit 3 reads exactly: see RULES)
# What a candidate's forecast must have a chance to beat. "lead-read": the leader's last read, LC-PFN's
# best-seen bar; "lead-forecast" (shipped): the leader's own forecast, both uncertain;
# "max-mean": the highest forecast mean among the others, which from 3 reads is the most optimistic
# extrapolation of ~20 and stopped the eventual best in 11 of 12 cells (benchmarks/lce_stopping.md)
RULES = ("lead-read", "lead-forecast", "max-mean")
RULE = "lead-forecast"  # chosen on seeds 3 and 4 (benchmarks/lce_stopping.md); the README run is seeds 0-2
QUANTILES = 20  # the leader's forecast integrated over this many quantiles (lead-forecast)

Forecaster = Callable[[Sequence[float], Sequence[float], float], Forecast]


@dataclass(frozen=True)
class LceSearchOptions(FinderOptions):
    """Learning-curve search's options: candidates (shared with random-search), the budget, how often
    curves are read, and the stopping probability.

    >>> LceSearchOptions(lce_steps=100, lce_every=30).validate()
    Traceback (most recent call last):
    sparsenas.errors.SparsenasError: --lce-steps 100 is not a multiple of --lce-every 30; e.g. --lce-steps 90 --lce-every 30
    """

    candidates: int = field(default=20, metadata={"help": "random masks sampled and scored", "range": (1, 100_000)})
    lce_steps: int = field(
        default=200, metadata={"help": "training steps of a candidate that is never stopped (the budget)", "range": (1, 10**7)}
    )
    lce_every: int = field(default=20, metadata={"help": "steps between a candidate's validation reads", "range": (1, 10**7)})
    lce_val: int = field(
        default=1000,
        metadata={"help": "validation samples a read uses (a fixed random subset; the final pick reads all)", "range": (1, 10**9)},
    )
    lce_stop: float = field(
        default=0.05,
        metadata={"help": "stop a candidate once its forecast gives it less than this probability of ending above the leader (0 = never)"},
    )

    def validate(self, in_run: bool = True) -> None:
        if not 0.0 <= self.lce_stop < 1.0:
            raise SparsenasError(f"--lce-stop must be a probability in [0, 1), got {self.lce_stop}; e.g. --lce-stop 0.05")
        if self.lce_steps % self.lce_every:
            good = max(self.lce_every, self.lce_steps - self.lce_steps % self.lce_every)
            raise SparsenasError(
                f"--lce-steps {self.lce_steps} is not a multiple of --lce-every {self.lce_every}; e.g. --lce-steps {good} --lce-every {self.lce_every}"
            )

    @classmethod
    def tiny(cls) -> LceSearchOptions:
        return cls(candidates=3, lce_steps=2, lce_every=1)  # fits the registry tests' one short epoch


def losers(
    reads: dict[int, list[tuple[int, float]]],
    budget: int,
    threshold: float,
    rule: str = RULE,
    predict: Forecaster = forecast,
    min_reads: int = MIN_READS,
) -> list[int]:
    """The members to stop now, given each member's reads so far (step, validation accuracy): those
    whose forecast of the accuracy at `budget` gives them less than `threshold` probability of beating
    the leader, the other member with the highest last read (`RULES` says against what). Members with
    fewer than `min_reads` reads are not judged; the sole member left is never stopped, nor all at once.

    >>> curve = lambda top: [(s, top * (1 - 0.5 ** (s / 10))) for s in (10, 20, 30, 40)]
    >>> losers({0: curve(0.9), 1: curve(0.5), 2: curve(0.88)}, budget=100, threshold=0.05)
    [1]
    """
    if rule not in RULES:
        raise ValueError(f"unknown stopping rule {rule!r}; one of {', '.join(RULES)}")
    ready = {m: r for m, r in reads.items() if len(r) >= min_reads}
    if threshold <= 0.0 or len(reads) < 2 or not ready:
        return []
    forecasts = {m: predict([s for s, _ in r], [a for _, a in r], float(budget)) for m, r in ready.items()}
    out = []
    lead_quantiles: dict[int, list[float]] = {}  # at most two leaders (the best, and the runner-up for the best)
    for m, f in forecasts.items():
        others = [n for n in reads if n != m]
        lead = max(others, key=lambda n: (reads[n][-1][1], -n))
        if rule == "lead-read":  # LC-PFN's bar: the best value seen so far (here the leader's last read)
            p = f.prob_above(reads[lead][-1][1])
        elif rule == "lead-forecast":  # P(m ends above the leader), both forecasts uncertain
            if lead not in lead_quantiles:
                g = forecasts.get(lead) or predict([s for s, _ in reads[lead]], [a for _, a in reads[lead]], float(budget))
                lead_quantiles[lead] = [g.quantile((k + 0.5) / QUANTILES) for k in range(QUANTILES)]
            p = sum(f.prob_above(q) for q in lead_quantiles[lead]) / QUANTILES
        else:  # "max-mean": the highest forecast mean among the others (optimistic: stops the eventual best)
            p = f.prob_above(max(forecasts[n].mean if n in forecasts else reads[n][-1][1] for n in others))
        if p < threshold:
            out.append(m)
    if len(out) == len(reads):
        out.remove(max(out, key=lambda m: (forecasts[m].mean, -m)))  # never every member: the likeliest stays
    return sorted(out)


@register
class LceSearch(Finder):
    name = "lce-search"
    help = (
        "random-search's --candidates trained together for --lce-steps, read every --lce-every steps; a learning-curve "
        "forecast stops those unlikely to end above the leader (--lce-stop); best measured survivor kept"
    )
    Options = LceSearchOptions
    has_search_cost = True
    draws_as = "random-search"  # the same candidates as random-search: the two are compared mask for mask
    decided_by = {"forecast": VERSION, "rule": f"{RULE}/{MIN_READS}/{QUANTILES}"}  # in its keys, where forecasts run

    def decided_by_for(self, options: LceSearchOptions) -> dict[str, str]:
        # with nothing to stop, or too few reads to judge, no forecast is made: the extrapolator
        # and the rule cannot move the numbers, so they stay out of the key
        judged = options.lce_stop > 0.0 and options.lce_steps // options.lce_every > MIN_READS
        return dict(self.decided_by) if judged else {}

    def find(self, ctx: SearchContext[LceSearchOptions]) -> Found:
        o = ctx.options
        start = time.perf_counter()
        groups = ctx.parent.node_groups()
        counts = allocate(groups, ctx.sparsity)
        available = total_steps(ctx.train, len(ctx.data.train))
        if o.lce_steps > available:  # training ends there: forecasts would aim past the last read
            raise SparsenasError(
                f"--lce-steps {o.lce_steps} is more than the {available} training steps of --epochs {ctx.train.epochs} on this data; "
                "lower --lce-steps (and --lce-every: the budget is a multiple of it) or raise --epochs"
            )
        cands = [random_mask(groups, counts, ctx.generator) for _ in range(o.candidates)]
        nets = [compact(ctx.parent, c) for c in cands]  # copies: θ0 on each candidate's nodes
        reads: dict[int, list[tuple[int, float]]] = {m: [] for m in range(len(nets))}
        val = ctx.data.val
        read_on = read_split(val, ctx.seed, o.lce_val)

        def stop(step: int, members: list[int], accs: list[float]) -> list[int]:
            for m, a in zip(members, accs):
                reads[m].append((step, a))
            if step >= o.lce_steps:
                return []  # the budget's end: the survivors are read in full below
            return losers({m: reads[m] for m in members}, o.lce_steps, o.lce_stop)

        checkpoints = Checkpoints(o.lce_every, stop, read_on)
        results = train_population(nets, ctx.data, ctx.train, data_seed=ctx.seed, max_steps=o.lce_steps, checkpoints=checkpoints)
        done = [m for m, r in enumerate(results) if r.status == "done"]
        losses, accs = Population([nets[m] for m in done], ctx.train).evaluate(val) if done else ([], [])
        final = {m: a for m, v, a in zip(done, losses, accs) if math.isfinite(v)}  # finite outputs on the whole split
        # a member was read at every multiple of lce_every it reached, the step it left at included
        # (a check is where a stop or a divergence is found), whether or not `stop` then saw it
        n_reads = sum(r.steps // o.lce_every for r in results)
        per_sample = count_flops(nets[0], ctx.data.input_shape)
        cost = SearchCost(
            candidates=len(cands),
            steps=sum(r.steps for r in results),
            flops=per_sample * (3.0 * sum(r.samples for r in results) + len(read_on) * n_reads + len(val) * len(done)),
            seconds=time.perf_counter() - start,
        )
        return Found(cands[best_survivor(final, reads)], cost)


def read_split(val: Split, seed: int, n: int) -> Split:
    """The `n` validation samples lce-search reads a seed's candidates on: a fixed random subset.

    >>> v = Split(torch.arange(10.0).unsqueeze(1), torch.arange(10)); len(read_split(v, 0, 4)), len(read_split(v, 0, 99))
    (4, 10)
    """
    subset = torch.randperm(len(val), generator=torch.Generator().manual_seed(seed))[:n].to(val.y.device)
    return Split(val.x[subset], val.y[subset])


def best_survivor(final: dict[int, float], reads: dict[int, list[tuple[int, float]]]) -> int:
    """The member with the highest validation accuracy at the budget's end (`final`: the survivors
    whose outputs on the whole split are finite); earliest on ties. If there is none (every one
    diverged), the member with the best last read; the first if nothing was read.

    >>> best_survivor({0: 0.5, 1: 0.7}, {0: [(2, 0.5)], 1: [(2, 0.7)], 2: [(1, 0.9)]})
    1
    """
    pool = final or {m: r[-1][1] for m, r in reads.items() if r} or {0: 0.0}
    return min(pool, key=lambda m: (-pool[m], m))
