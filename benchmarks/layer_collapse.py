"""Layer collapse (Tanaka, Kunin, Yamins & Ganguli 2020, Fig. 1): how much of each layer the pruning
finders keep under global ranking as compression grows, on an untrained parent.

For compression 10^c, c = 0.25, 0.5, ..., 4 (weight sparsity 1 - 10^-c), each finder's weight-space
mask with `--allocation global` is computed from the parent at its init θ0, nothing is trained:
`snip`, `grasp` and `synflow` through their `find`, as a run would call them; magnitude at init (|θ0|,
the paper's "Magnitude"; our `magnitude` finder ranks the trained parent's weights instead, so it is
scored here through the same `to_mask` step), and random scores ranked globally (the paper's
"Random", the reference: a layer keeps about (1-s) of itself). Reported per finder and seed: each
layer's kept fraction, the first compression at which a layer is empty (collapse), and the largest at
which some path still joins input to output (`masks.connected`).

    python benchmarks/layer_collapse.py [--data-dir DIR] [--seeds 0,1,2] [--out FILE.md]

With `--out` the tables go to FILE.md and the figure to FILE.png (matplotlib). SynFlow's 100 rounds
per mask dominate: about 2.5 minutes for 3 seeds with one thread on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sparsenas.data import Dataset, load_dataset
from sparsenas.finders import SearchContext, get_finder
from sparsenas.finders.scoring import GLOBAL_TOPK, prunable_params, to_mask
from sparsenas.masks import WeightMask, connected
from sparsenas.models import Parent, build_parent
from sparsenas.protocol import RunSpec
from sparsenas.protocol.plan import finder_seed
from sparsenas.train import TrainSpec

FINDERS = ("random", "magnitude", "snip", "grasp", "synflow")
COMPRESSIONS = tuple(k / 4 for k in range(1, 17))  # log10 of the compression ratio: 0.25 .. 4


@dataclass(frozen=True)
class Point:
    finder: str
    seed: int
    compression: float  # log10 of (all prunable weights) / (kept weights)
    kept: tuple[int, ...]  # per prunable layer
    sizes: tuple[int, ...]
    connected: int  # kept weights on some input-to-output path


def finder_mask(name: str, parent: Parent, data: Dataset, sparsity: float, seed: int) -> WeightMask:
    """`name`'s global weight-space mask of `parent` at θ0, untrained.

    >>> from sparsenas.models import build_parent
    >>> ds = load_dataset("digits", limit=32); p = build_parent("mlp", ds.input_shape, 10, 0, (8,))
    >>> finder_mask("magnitude", p, ds, 0.9, 0).kept_counts()
    (7, 53)
    """
    options = {k: getattr(RunSpec(), k) for k in get_finder(name).options}  # the run defaults
    generator = torch.Generator().manual_seed(finder_seed(seed, sparsity, name))
    ctx = SearchContext(parent, data, TrainSpec(), sparsity, seed, generator, options, space="weight", allocation="global")
    weights = prunable_params(parent)
    if name == "magnitude":  # at init, as the paper's baseline: the finder itself would train first
        return to_mask(ctx, {n: w.detach().abs() for n, w in weights.items()}, topk=GLOBAL_TOPK)[0]
    if name == "random":  # random scores ranked globally (the `random` finder keeps per-layer counts)
        return to_mask(ctx, {n: torch.rand(w.shape, generator=generator) for n, w in weights.items()}, topk=GLOBAL_TOPK)[0]
    mask = get_finder(name).find(ctx).mask
    assert isinstance(mask, WeightMask)
    return mask


def sweep(data: Dataset, model: str, seeds: list[int], finders: tuple[str, ...], log=print) -> list[Point]:
    """Every finder's mask at every compression of `COMPRESSIONS`, for each seed's parent."""
    points = []
    for seed in seeds:
        parent = build_parent(model, data.input_shape, data.num_classes, seed)
        for name in finders:
            start = time.perf_counter()
            for c in COMPRESSIONS:
                mask = finder_mask(name, parent, data, 1.0 - 10.0**-c, seed)
                alive = sum(connected(parent, mask, data.input_shape).kept_counts())
                points.append(Point(name, seed, c, mask.kept_counts(), mask.sizes(), alive))
            log(f"seed {seed} {name}: {time.perf_counter() - start:.0f} s")
    return points


def collapse_at(points: list[Point]) -> float | None:
    """The first compression (log10) of one finder and seed at which a layer is empty, or None."""
    return next((p.compression for p in sorted(points, key=lambda p: p.compression) if min(p.kept) == 0), None)


def connected_up_to(points: list[Point]) -> float | None:
    """The largest compression (log10) at which the mask still joins input to output, or None."""
    return max((p.compression for p in points if p.connected > 0), default=None)


def _c(x: float | None) -> str:
    return "never" if x is None else f"10^{x:g}"


def tables(points: list[Point], layers: list[str]) -> str:
    """A summary table (collapse and connectivity per finder and seed) and kept fractions per layer."""
    finders = list(dict.fromkeys(p.finder for p in points))
    seeds = sorted({p.seed for p in points})
    out = ["| finder | first empty layer (seeds " + ", ".join(map(str, seeds)) + ") | still connected up to |", "|---|---|---|"]
    for f in finders:
        per_seed = [[p for p in points if p.finder == f and p.seed == s] for s in seeds]
        out.append(f"| {f} | {', '.join(_c(collapse_at(ps)) for ps in per_seed)} | "
                   f"{', '.join(_c(connected_up_to(ps)) for ps in per_seed)} |")
    out += ["", f"Kept fraction of each layer ({', '.join(layers)}), mean over seeds; 0 = an empty layer in every seed.", ""]
    out.append("| compression | " + " | ".join(finders) + " |")
    out.append("|---" * (len(finders) + 1) + "|")
    for c in COMPRESSIONS:
        cells = []
        for f in finders:
            ps = [p for p in points if p.finder == f and p.compression == c]
            frac = [sum(p.kept[i] / p.sizes[i] for p in ps) / len(ps) for i in range(len(layers))]
            cells.append(" / ".join("0" if x == 0 else f"{x:.2g}" for x in frac))
        out.append(f"| 10^{c:g} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def figure(points: list[Point], layers: list[str], path: Path) -> None:
    """Kept fraction per layer against compression, one panel per finder (seed 0), like the paper's Fig. 1."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    finders = list(dict.fromkeys(p.finder for p in points))
    seed = min(p.seed for p in points)
    fig, axes = plt.subplots(1, len(finders), figsize=(3 * len(finders), 3), sharey=True)
    for ax, f in zip(axes, finders):
        ps = sorted((p for p in points if p.finder == f and p.seed == seed), key=lambda p: p.compression)
        for i, name in enumerate(layers):
            # an empty layer is drawn at the floor of the log axis, so collapse shows as a drop
            ax.plot([p.compression for p in ps], [max(p.kept[i] / p.sizes[i], 1e-7) for p in ps], marker=".", label=name)
        ax.plot([p.compression for p in ps], [10.0**-p.compression for p in ps], "k:", lw=1, label="1 / compression")
        ax.set_yscale("log")
        ax.set_ylim(5e-8, 2)
        ax.set_title(f)
        ax.set_xlabel("compression (log10)")
    axes[0].set_ylabel("kept fraction of the layer")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX files (default: Debian's location)")
    ap.add_argument("--model", default="lenet-300-100")
    ap.add_argument("--seeds", default="0,1,2", help="parent inits (and SNIP/GraSP batches), comma-separated")
    ap.add_argument("--finders", default=",".join(FINDERS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 holds up on a shared machine)")
    ap.add_argument("--out", default=None, help="write the tables to this .md file and the figure beside it (.png)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", args.data_dir)
    finders = tuple(f for f in args.finders.split(",") if f)
    unknown = [f for f in finders if f not in FINDERS]
    if unknown:
        ap.error(f"unknown finder(s) {unknown}; choose from {', '.join(FINDERS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    points = sweep(data, args.model, seeds, finders, log=lambda m: print(m, file=sys.stderr, flush=True))
    layers = [n.removesuffix(".weight") for n in build_parent(args.model, data.input_shape, data.num_classes, 0).prunable_weights()]
    text = tables(points, layers)
    print(text)
    if args.out:
        out = Path(args.out)
        out.write_text(f"# Layer collapse: {args.model} on fashion-mnist, global weight-space masks at init\n\n{text}\n")
        try:
            figure(points, layers, out.with_suffix(".png"))
        except ImportError:
            print("matplotlib not installed: no figure", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
