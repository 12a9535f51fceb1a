"""Bring your own finder: one class with its options, one decorator, and it runs under the full protocol.

Registers `init-magnitude` (keep the weights largest in absolute value at initialization, before
any training: the "magnitude at init" baseline of the pruning-at-init literature) for both spaces,
then compares it on digits with the random control, SNIP, and its own sanity checks:

    python examples/own_finder.py --out runs/own-finder [--layer-scale fan-in] [--config spec.toml]

A finder gets a `SearchContext` (the parent at θ0, the data, the training budget, the target
sparsity and space, its own generator and its options) and returns a `Found`. A scoring finder only
computes one score per weight (higher = keep) and hands it to `scoring.to_mask`, which allocates the
sparsity (per layer or globally, `--allocation`) and, in the node space, sums a node's incoming
scores: so it works in both spaces and its controls go through the same code.

Its options are a frozen dataclass beside it: the declaration is the flag, the spec-file key, the
check and the help. Once the file is imported, `sparsenas run` takes the option like its own:

    sparsenas run --import examples/own_finder.py --finders dense,random,init-magnitude \\
        --space weight --allocation global --layer-scale fan-in

and a spec file (``--config spec.toml``) sets it flat (``layer_scale = "fan-in"``) or grouped:

    [options.init-magnitude]
    layer_scale = "fan-in"
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field

from sparsenas.finders import Finder, Found, SearchContext, SearchCost, register
from sparsenas.finders.options import FinderOptions
from sparsenas.finders.scoring import found, prunable_params, to_mask
from sparsenas.protocol import build_spec, load_spec_file, run
from sparsenas.report import write_report


@dataclass(frozen=True)
class InitMagnitudeOptions(FinderOptions):
    """What `--layer-scale` does: Kaiming-style inits give wide layers small weights, so a global
    ranking of raw |θ0| empties them first; scaling by sqrt(fan-in) ranks layers on one footing.

    >>> InitMagnitudeOptions().layer_scale, InitMagnitudeOptions.tiny().layer_scale
    ('none', 'fan-in')
    """

    layer_scale: str = field(
        default="none",
        metadata={
            "help": "scale each layer's |weights| before ranking: none, or fan-in (by the square root of its inputs)",
            "choices": ("none", "fan-in"),
        },
    )

    @classmethod
    def tiny(cls) -> InitMagnitudeOptions:
        return cls(layer_scale="fan-in")  # the branch that does something


@register
class InitMagnitude(Finder):
    name = "init-magnitude"
    help = "keep the largest |weights| at initialization (no training, no data); --layer-scale fan-in for a fair global ranking"
    Options = InitMagnitudeOptions
    spaces = ("node", "weight")
    scored = True  # returns its scores: --allocation applies, and the invert check can rank them

    def find(self, ctx: SearchContext[InitMagnitudeOptions]) -> Found:  # ctx.options is typed
        start = time.perf_counter()
        fan_in = ctx.options.layer_scale == "fan-in"
        # w[0].numel(): the inputs of one output unit (a Linear row, a Conv filter)
        scores = {n: w.detach().abs() * (math.sqrt(w[0].numel()) if fan_in else 1.0) for n, w in prunable_params(ctx.parent).items()}
        mask, ranked = to_mask(ctx, scores)
        return found(mask, SearchCost(seconds=time.perf_counter() - start), ranked)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/own-finder")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--config", help="a spec file, e.g. one with [options.init-magnitude] layer_scale = 'fan-in'")
    p.add_argument("--layer-scale", choices=("none", "fan-in"), help="init-magnitude's option, as `sparsenas run` takes it")
    args = p.parse_args(argv)
    values = load_spec_file(args.config) if args.config else {}
    values |= dict(
        dataset="digits",
        space="weight",
        allocation="global",
        finders=("dense", "random", "snip", "init-magnitude"),
        checks=("shuffle", "invert"),
        sparsities=(0.9, 0.98),
        seeds=tuple(range(args.seeds)),
        epochs=args.epochs,
    )
    if args.layer_scale:
        values["layer_scale"] = args.layer_scale
    spec = build_spec(values)
    summary = run(spec, args.out)
    write_report(args.out)
    print(f"{summary.ran} trials in {summary.seconds:.1f} s ({spec.options_for('init-magnitude')}) -> {args.out}/report.md")


if __name__ == "__main__":
    main()
