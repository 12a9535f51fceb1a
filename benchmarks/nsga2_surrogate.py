"""nsga2 with and without its surrogate (`--predictor ridge|gbm`) at equal real evaluations.

For each seed the parent and the finder's generator are the ones a run gives the seed's nsga2 trials,
and the search is called directly (`search_front` on a `SearchContext`): the search is what is
compared, nothing is trained in full. Objectives accuracy and FLOPs (deterministic; a latency search
is not repeatable). Reported per seed and predictor, and as means over the seeds:

- evals: candidates trained (each for --nsga-steps steps); the only thing a search is charged for;
- hv_all / hv_front: the hypervolume of every trained candidate / of the returned front in the plane
  (proxy error, FLOPs / the parent's FLOPs), reference point (1, 1) (`finders.surrogate.hypervolume`);
- hv_all@k / hv_front@k: the same over the first k candidates each search trained, k the fewest any
  predictor trained on that seed (plain NSGA-II trains fewer than generations x population when its
  offspring repeat a trained width vector), the front picked from those k as the finder picks it;
- to_plain: the fewest candidates after which the search's hv_all reaches plain NSGA-II's final hv_all
  (blank if it never does);
- seconds: the search's wall seconds (training, the surrogate's fits and inner searches).

    OMP_NUM_THREADS=1 python benchmarks/nsga2_surrogate.py [--dataset fashion-mnist] [--limit 5000] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from sparsenas.data import load_dataset
from sparsenas.finders import SearchContext
from sparsenas.finders.nsga2 import EVALUATED, Candidate, NSGA2Options, pick_front, search_front
from sparsenas.finders.surrogate import hypervolume
from sparsenas.masks import count_flops, count_params
from sparsenas.models import build_parent
from sparsenas.protocol.plan import finder_seed
from sparsenas.train import TrainSpec


@dataclass(frozen=True)
class Result:
    seed: int
    predictor: str
    evaluated: list[Candidate]  # in the order the search trained them
    front: list[Candidate]
    seconds: float


def search(args: argparse.Namespace, data, seed: int, predictor: str) -> Result:
    """One seed's nsga2 search as a run's front trials would do it."""
    parent = build_parent(args.model, data.input_shape, data.num_classes, seed)
    options = NSGA2Options(
        objectives=("accuracy", args.cost), evo_population=args.evo_population, generations=args.generations,
        nsga_steps=args.nsga_steps, front_size=args.front_size, predictor=predictor,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(finder_seed(seed, 0.0, "nsga2"))  # a front trial's sparsity is 0
    ctx = SearchContext(parent, data, TrainSpec(), 0.0, seed, gen, options, slot=0)
    front, cost = search_front(ctx)
    return Result(seed, predictor, ctx.memo[EVALUATED], front, cost.seconds)


def hv(cands: list[Candidate], parent_cost: float) -> float:
    return hypervolume([(1.0 - c.proxy_acc, c.cost) for c in cands], parent_cost)


def front_of(cands: list[Candidate], k: int) -> list[Candidate]:
    points = np.array([[1.0 - c.proxy_acc, c.cost] for c in cands])
    return [cands[i] for i in pick_front(points, min(k, len(cands)))]


def reach(cands: list[Candidate], target: float, parent_cost: float) -> int | None:
    """The fewest first candidates whose hypervolume reaches `target` (None: never).

    >>> from sparsenas.masks import NodeMask
    >>> c = [Candidate((1,), NodeMask(((0,),)), 0.5, 50.0), Candidate((2,), NodeMask(((0, 1),)), 0.75, 50.0)]
    >>> reach(c, 0.25, 100.0), reach(c, 0.3, 100.0), reach(c, 0.9, 100.0)
    (1, 2, None)
    """
    for k in range(1, len(cands) + 1):
        if hv(cands[:k], parent_cost) >= target - 1e-12:
            return k
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=5000, help="first N samples of each split (default 5000)")
    ap.add_argument("--model", default="lenet-300-100")
    ap.add_argument("--cost", default="flops", choices=("flops", "params"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--predictors", default="none,ridge,gbm")
    ap.add_argument("--evo-population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--nsga-steps", type=int, default=50)
    ap.add_argument("--front-size", type=int, default=6)
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    predictors = args.predictors.split(",")
    if predictors[0] != "none":
        ap.error("--predictors must start with none: the others are compared with plain NSGA-II")
    data = load_dataset(args.dataset, args.data_dir, args.limit)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {' '.join(['python', *sys.argv])}")
    print(f"# {started}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.machine()}; "
          f"{args.dataset} limit {args.limit}, {args.model}, accuracy vs {args.cost}, population {args.evo_population}, "
          f"{args.generations} generations, {args.nsga_steps} steps per candidate")  # fmt: skip
    header = f"{'seed':>4} {'predictor':>9} {'evals':>5} {'hv_all':>7} {'hv_front':>8} {'k':>4} {'hv_all@k':>8} {'hv_front@k':>10} {'to_plain':>8} {'seconds':>7}"
    print(header)
    rows: dict[str, list[tuple[float, ...]]] = {p: [] for p in predictors}
    for seed in seeds:
        parent = build_parent(args.model, data.input_shape, data.num_classes, seed)
        parent_cost = float(count_flops(parent, data.input_shape) if args.cost == "flops" else count_params(parent))
        results = [search(args, data, seed, p) for p in predictors]
        k = min(len(r.evaluated) for r in results)
        plain_hv = hv(results[0].evaluated, parent_cost)
        for r in results:
            first = r.evaluated[:k]
            to_plain = reach(r.evaluated, plain_hv, parent_cost)
            row = (len(r.evaluated), hv(r.evaluated, parent_cost), hv(r.front, parent_cost), k, hv(first, parent_cost),
                   hv(front_of(first, args.front_size), parent_cost), to_plain if to_plain is not None else float("nan"), r.seconds)  # fmt: skip
            rows[r.predictor].append(row)
            print(f"{seed:>4} {r.predictor:>9} {row[0]:>5} {row[1]:>7.4f} {row[2]:>8.4f} {k:>4} {row[4]:>8.4f} {row[5]:>10.4f} "
                  f"{'' if to_plain is None else to_plain:>8} {row[7]:>7.1f}", flush=True)  # fmt: skip
    for p in predictors:
        m = np.array(rows[p], dtype=float).mean(axis=0)
        reached = [r[6] for r in rows[p] if not np.isnan(r[6])]
        to_plain = f"{np.mean(reached):.1f}" if reached else ""
        print(f"{'mean':>4} {p:>9} {m[0]:>5.1f} {m[1]:>7.4f} {m[2]:>8.4f} {m[3]:>4.0f} {m[4]:>8.4f} {m[5]:>10.4f} "
              f"{to_plain:>8} {m[7]:>7.1f}   (to_plain: mean over the {len(reached)} of {len(rows[p])} seeds that reach it)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
