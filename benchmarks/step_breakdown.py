"""Where one population training step goes: the whole step against its parts, in one process.

For the README protocol's populations on LeNet-300-100 (5 seeds, each member on its own seed's
batch): the 5 dense parents, and the 10 sub-networks (random and random-search) at node sparsity 0.5
and at 0.95. For each it times, by the best of a few repeats:

- the whole step (`Population.step`: forward, loss, backward, fused SGD with momentum, masks),
- forward + backward alone, the optimizer step alone,
- the step's GEMMs alone, on the same shapes (forward y^T = W x^T, each weight gradient, and the
  input gradient of every layer but the first), and the batch gather from a 60k-row split.

The gap between "fwd+bwd" and "GEMMs alone" is what the framework adds (elementwise ops, the loss,
autograd, cold caches after the optimizer streams through the weights); it says how far a step can
still come down on this machine.

    python benchmarks/step_breakdown.py --out benchmarks/step_breakdown_cpu.md
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from datetime import date

import torch

from sparsenas.models.mlp import lenet_300_100
from sparsenas.train import TrainSpec
from sparsenas.train.loss import member_losses
from sparsenas.train.stacked import Population

CASES = {"dense, K=5": (5, (300, 100)), "node sparsity 0.5, K=10": (10, (150, 50)), "node sparsity 0.95, K=10": (10, (15, 5))}


def best_ms(fn: Callable[[], object], n: int = 100, repeats: int = 7) -> float:
    """The best mean time of `fn` over `repeats` runs of `n` calls each, in ms, after 5 warm-up calls."""
    for _ in range(5):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n * 1e3)
    return best


def breakdown(k: int, widths: tuple[int, int]) -> dict[str, float]:
    """The step and its parts, in ms, for `k` LeNet-300-100 members of hidden `widths`."""
    torch.manual_seed(0)
    pop = Population([lenet_300_100((1, 28, 28), 10, widths) for _ in range(k)], TrainSpec(lr=0.05, momentum=0.9))
    x, y = torch.randn(k, 128, 1, 28, 28), torch.randint(0, 10, (k, 128))

    def fwd_bwd() -> None:
        losses = member_losses(pop.logits_each(x), y)
        pop.optimizer.zero_grad()
        losses.sum().backward()

    weights = [t.detach() for n, t in pop.params.items() if n.endswith("weight")]  # layer order
    xt = x.flatten(2).transpose(1, 2).contiguous()

    def gemms() -> None:
        h, saved = xt, []
        for w in weights:
            out = torch.bmm(w, h)
            saved.append((out, h))
            h = out
        for i, (out, h_in) in enumerate(saved):
            torch.bmm(out, h_in.transpose(1, 2))  # the weight gradient
            if i:
                torch.bmm(weights[i].transpose(1, 2), out)  # the input gradient (none for the first layer)

    split, idx = torch.randn(60000, 1, 28, 28), torch.randint(0, 60000, (k * 128,))
    return {
        "step": best_ms(lambda: pop.step(x, y, 0.05)),
        "fwd+bwd": best_ms(fwd_bwd),
        "optimizer": best_ms(pop.optimizer.step),
        "GEMMs alone": best_ms(gemms),
        "batch gather": best_ms(lambda: split.index_select(0, idx)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the table to this markdown file too")
    args = ap.parse_args()
    rows = {name: breakdown(*case) for name, case in CASES.items()}
    cols = ["step", "fwd+bwd", "optimizer", "GEMMs alone", "batch gather"]
    lines = [
        f"{date.today()}, {torch.get_num_threads()} threads, Python {platform.python_version()}, torch {torch.__version__}; ms per step, best of 7 means of 100",
        "",
        "| population | " + " | ".join(cols) + " | step / GEMMs |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:.2f}" for c in cols) + f" | {r['step'] / r['GEMMs alone']:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write("# One population step, and its parts (`step_breakdown.py`)\n\n" + text + "\n")


if __name__ == "__main__":
    main()
