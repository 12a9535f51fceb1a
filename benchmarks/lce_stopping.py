"""How well lce-search's stopping rule keeps the candidate that random-search's full budget would pick.

Records, for each (seed, sparsity), every candidate's reads as lce-search makes them (random-search's
candidates, the seed's data order, a read every --every steps on the finder's --val-sample subset)
and its accuracy on the whole validation split at the budget's end, with nothing stopped. Then replays
stopping rules on those reads, so many rules and thresholds are compared on the same curves without
training again: how often the best candidate at the budget's end survives, the rank and accuracy
deficit of the pick, and the steps trained relative to training every candidate to the budget.

    python benchmarks/lce_stopping.py --seeds 3,4 --rules lead-read,max-mean --thresholds 0.05,0.01
"""

from __future__ import annotations

import argparse
import time

import torch

from sparsenas.data import load_dataset
from sparsenas.finders.lce_search import RULES, losers, read_split
from sparsenas.masks import allocate, compact, random_mask
from sparsenas.models import build_parent
from sparsenas.predict import forecast
from sparsenas.protocol.plan import finder_seed
from sparsenas.train import Checkpoints, Population, TrainSpec, train_population


def record(ds, model: str, spec: TrainSpec, seed: int, sparsity: float, n: int, budget: int, every: int, sample: int):
    parent = build_parent(model, ds.input_shape, ds.num_classes, seed)
    gen = torch.Generator().manual_seed(finder_seed(seed, sparsity, "random-search"))  # lce-search draws these
    groups = parent.node_groups()
    nets = [compact(parent, random_mask(groups, allocate(groups, sparsity), gen)) for _ in range(n)]
    reads: dict[int, list[tuple[int, float]]] = {m: [] for m in range(n)}

    def keep_all(step, members, accs):
        for m, a in zip(members, accs):
            reads[m].append((step, a))
        return []

    split = read_split(ds.val, seed, sample)  # the finder's own subset
    train_population(nets, ds, spec, data_seed=seed, max_steps=budget, checkpoints=Checkpoints(every, keep_all, split))
    final = Population(nets, spec).evaluate(ds.val)[1]
    return reads, final


def replay(reads, final, budget: int, rule: str, threshold: float, cache: dict) -> tuple[bool, int, float, float]:
    """(winner kept, pick's rank, accuracy deficit, steps trained / full) of one rule on one cell."""

    def predict(xs, ys, x_final):
        key = (tuple(xs), tuple(ys))
        if key not in cache:
            cache[key] = forecast(xs, ys, x_final)
        return cache[key]

    alive = set(reads)
    stopped: dict[int, int] = {}
    for i in range(len(reads[0])):
        step = reads[0][i][0]
        if step >= budget:
            break
        for m in losers({m: reads[m][: i + 1] for m in sorted(alive)}, budget, threshold, rule, predict):
            alive.discard(m)
            stopped[m] = step
    order = sorted(range(len(final)), key=lambda m: (-final[m], m))
    pick = min(alive, key=lambda m: (-final[m], m))
    steps = sum(stopped.get(m, budget) for m in reads)
    return order[0] in alive, order.index(pick) + 1, final[order[0]] - final[pick], steps / (budget * len(reads))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--model", default="lenet-300-100")
    ap.add_argument("--seeds", default="3,4")
    ap.add_argument("--sparsities", default="0.5,0.8,0.9,0.95")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--val-sample", type=int, default=1000)
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--thresholds", default="0.05,0.01,0.001")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(a.dataset)
    spec = TrainSpec(epochs=20, batch_size=128, lr=0.05, momentum=0.9, schedule="cosine")  # the README run's training
    start = time.perf_counter()
    cells = [
        (seed, s, *record(ds, a.model, spec, seed, s, a.candidates, a.steps, a.every, a.val_sample))
        for seed in map(int, a.seeds.split(","))
        for s in map(float, a.sparsities.split(","))
    ]
    print(f"{len(cells)} cells recorded in {time.perf_counter() - start:.0f} s (seeds {a.seeds}, sparsities {a.sparsities})\n")
    print("| rule | threshold | best kept | pick's rank (mean, worst) | deficit pp (mean, worst) | steps / full |")
    print("|---|---|---|---|---|---|")
    cache: dict = {}
    for rule in a.rules.split(","):
        for t in map(float, a.thresholds.split(",")):
            rows = [replay(r, f, a.steps, rule, t, cache) for _, _, r, f in cells]
            kept = sum(k for k, _, _, _ in rows)
            ranks = [r for _, r, _, _ in rows]
            gaps = [100 * g for _, _, g, _ in rows]
            cost = sum(c for _, _, _, c in rows) / len(rows)
            print(
                f"| {rule} | {t} | {kept}/{len(rows)} | {sum(ranks) / len(ranks):.2f}, {max(ranks)} | "
                f"{sum(gaps) / len(gaps):.2f}, {max(gaps):.2f} | {cost:.2f} |"
            )


if __name__ == "__main__":
    main()
