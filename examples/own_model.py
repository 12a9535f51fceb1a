"""Your own model and data, as you already have them: a plain nn.Sequential and a torch Dataset.

Registers a dataset given as a `torch.utils.data.Dataset` subclass (scikit-learn's bundled wine
table: 178 samples, 13 chemical measurements, 3 cultivars) and a parent written as an ordinary
`nn.Sequential` that declares no node groups, then runs dense, random and random-search at two node
sparsities and writes the report.

    python examples/own_model.py --out runs/own-model

`build_parent` sees that the constructor returned a plain module and discovers its node groups by
tracing it with torch.fx (`sparsenas.models.as_parent`): every hidden Linear's units (and every
hidden Conv2d's channels) become a group; the last layer is the classifier. That works for chains
of Linear / Conv2d layers joined by activations, dropout, pooling and flatten; anything else
(residual adds, normalization layers, grouped convs) is refused with one line naming the layer, and
such a model declares `node_groups()` by hand as in examples/bring_your_own.py.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from sparsenas.data import DATASETS, Dataset, from_torch_dataset
from sparsenas.data.base import no_data_dir
from sparsenas.models import MODELS, build_parent
from sparsenas.protocol import RunSpec, run
from sparsenas.report import write_report
from sparsenas.train import TrainSpec


class WineTable(TorchDataset):
    """The wine table as (features, cultivar) items; `split` picks a fixed 36-sample test set."""

    def __init__(self, split: str) -> None:
        from sklearn.datasets import load_wine

        bunch = load_wine()
        perm = torch.randperm(len(bunch.target), generator=torch.Generator().manual_seed(1))  # fixed test split
        idx = (perm[:36] if split == "test" else perm[36:]).sort().values
        self.x = torch.tensor(bunch.data, dtype=torch.float32)[idx]  # (N, 13), raw units
        self.y = torch.tensor(bunch.target, dtype=torch.int64)[idx]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


@DATASETS.register("wine", help="scikit-learn's bundled wine table (178 x 13, 3 classes), via a torch Dataset")
def load_wine(data_dir: str | None = None) -> Dataset:
    no_data_dir("wine", data_dir)
    # per_feature: the 13 measurements range from ~0.1 (hue) to ~1000 (proline)
    return from_torch_dataset("wine", WineTable("train"), WineTable("test"), n_val=18, per_feature=True)


@MODELS.register("wine-mlp", help="example: plain nn.Sequential MLP, node groups discovered (default 16,8)")
def wine_mlp(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> nn.Module:
    w1, w2 = widths or (16, 8)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), w1),
        nn.ReLU(),
        nn.Linear(w1, w2),
        nn.SiLU(),
        nn.Linear(w2, num_classes),
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/own-model")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    start = time.perf_counter()
    for g in build_parent("wine-mlp", (13,), 3, seed=0).node_groups():
        print(
            f"node group {g.name}: {g.size} nodes; rows of {', '.join(s.tensor for s in g.producers)}; "
            f"columns of {', '.join(s.tensor for s in g.consumers)}"
        )
    spec = RunSpec(
        dataset="wine",
        model="wine-mlp",
        finders=("dense", "random", "random-search"),
        sparsities=(0.5, 0.8),
        seeds=tuple(range(args.seeds)),
        candidates=10,
        train=TrainSpec(epochs=args.epochs, batch_size=32, lr=0.05),
    )
    summary = run(spec, args.out)
    paths = write_report(args.out)
    print(f"{summary.ran} trials run in {time.perf_counter() - start:.1f} s; report: {paths['md']}")


if __name__ == "__main__":
    main()
