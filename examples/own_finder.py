"""Bring your own finder: one class, one decorator, and it runs under the full protocol.

Registers `init-magnitude` (keep the weights largest in absolute value at initialization, before
any training: the "magnitude at init" baseline of the pruning-at-init literature) for both spaces,
then compares it on digits with the random control, SNIP, and its own sanity checks:

    python examples/own_finder.py --out runs/own-finder

A finder gets a `SearchContext` (the parent at θ0, the data, the training budget, the target
sparsity and space, its own generator) and returns a `Found`. A scoring finder only computes one
score per weight (higher = keep) and hands it to `scoring.to_mask`, which allocates the sparsity
(per layer or globally, `--allocation`) and, in the node space, sums a node's incoming scores: so it
works in both spaces and its controls go through the same code.
"""

from __future__ import annotations

import argparse
import time

from sparsenas.finders import Finder, Found, SearchContext, SearchCost, register
from sparsenas.finders.scoring import found, prunable_params, to_mask
from sparsenas.protocol import RunSpec, run
from sparsenas.report import write_report
from sparsenas.train import TrainSpec


@register
class InitMagnitude(Finder):
    name = "init-magnitude"
    help = "keep the largest |weights| at initialization (no training, no data)"
    spaces = ("node", "weight")
    scored = True  # returns its scores: --allocation applies, and the invert check can rank them

    def find(self, ctx: SearchContext) -> Found:
        start = time.perf_counter()
        scores = {n: w.detach().abs() for n, w in prunable_params(ctx.parent).items()}
        mask, ranked = to_mask(ctx, scores)
        return found(mask, SearchCost(seconds=time.perf_counter() - start), ranked)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/own-finder")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    spec = RunSpec(
        dataset="digits", space="weight", finders=("dense", "random", "snip", "init-magnitude"),
        checks=("shuffle", "invert"), sparsities=(0.9, 0.98), seeds=tuple(range(args.seeds)),
        train=TrainSpec(epochs=args.epochs),
    )
    summary = run(spec, args.out)
    write_report(args.out)
    print(f"{summary.ran} trials in {summary.seconds:.1f} s -> {args.out}/report.md")


if __name__ == "__main__":
    main()
