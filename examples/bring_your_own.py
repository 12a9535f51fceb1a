"""Bring your own parent network and dataset to the sparsenas protocol.

Registers a dataset (scikit-learn's bundled breast-cancer table: 569 samples, 30 features, 2
classes) and a parent (a GELU MLP with a residual-free chain of three hidden layers), then runs
dense, random and random-search at two node sparsities and writes the report.

    python examples/bring_your_own.py --out runs/byo

A parent is any `sparsenas.models.Parent` whose `node_groups()` says, for each hidden layer, which
tensors its nodes index: the rows of the weight and bias that produce them and the columns of the
next layer that consume them. Compaction, masks, FLOPs and every finder work from that alone.
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from sparsenas.data import DATASETS, Dataset, split_and_normalize
from sparsenas.models import MODELS, NodeGroup, Parent, TensorSlice
from sparsenas.protocol import RunSpec, run
from sparsenas.report import write_report
from sparsenas.train import TrainSpec


@DATASETS.register("breast-cancer", help="scikit-learn's bundled Wisconsin breast-cancer table (569 x 30, 2 classes)")
def load_breast_cancer(data_dir: str | None = None) -> Dataset:
    from sklearn.datasets import load_breast_cancer as sk_load

    bunch = sk_load()
    x = torch.tensor(bunch.data, dtype=torch.float32)  # (569, 30)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))  # fixed test split
    test, train = perm[:114].sort().values, perm[114:].sort().values
    return split_and_normalize("breast-cancer", x[train], y[train], x[test], y[test], n_val=57, num_classes=2, per_feature=True)


class GeluMLP(Parent):
    """Linear -> GELU, three times, then a linear classifier; each hidden layer is a node group."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.widths = tuple(widths)
        dims = [math.prod(input_shape), *widths]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = nn.functional.gelu(layer(x))
        return self.head(x)

    def node_groups(self) -> list[NodeGroup]:
        consumers = [f"hidden.{i + 1}" for i in range(len(self.widths) - 1)] + ["head"]
        return [
            NodeGroup(
                name=f"hidden.{i}",
                size=w,
                producers=(TensorSlice(f"hidden.{i}.weight", 0), TensorSlice(f"hidden.{i}.bias", 0)),
                consumers=(TensorSlice(f"{consumers[i]}.weight", 1),),
            )
            for i, w in enumerate(self.widths)
        ]


@MODELS.register("gelu-mlp", help="example: GELU MLP with three hidden layers (default 128,128,64)")
def gelu_mlp(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> GeluMLP:
    return GeluMLP(input_shape, num_classes, widths or (128, 128, 64))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/breast-cancer")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args(argv)
    spec = RunSpec(
        dataset="breast-cancer",
        model="gelu-mlp",
        sparsities=(0.5, 0.9),
        seeds=tuple(range(args.seeds)),
        candidates=10,
        train=TrainSpec(epochs=args.epochs, batch_size=32, lr=0.01),
    )
    summary = run(spec, args.out)
    paths = write_report(args.out)
    print(f"{summary.ran} trials run; report: {paths['md']}")


if __name__ == "__main__":
    main()
