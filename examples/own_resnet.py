"""Your own ResNet, as you already wrote it: BatchNorm, residual `+=`, no node groups declared.

Registers a small CIFAR-style ResNet written as a plain `nn.Module` (basic blocks with BatchNorm, an
in-place `out += self.shortcut(x)`, an empty `nn.Sequential()` as the identity shortcut and a 1x1
conv + BatchNorm projection where the width changes), prints the node groups discovery finds in it,
then runs dense, random and random-search at two node sparsities on the bundled digits and writes
the report.

    python examples/own_resnet.py --out runs/own-resnet

Discovery (`sparsenas.models.discover_node_groups`) traces the forward with torch.fx: every conv
writing into one residual stream (the stem, each block's second conv, the projection shortcut)
keeps or drops a channel together, so each stage's stream is one group; each block's first conv is
a group of its own; BatchNorm's scale, shift and running statistics follow the channels of the conv
before it. The compacted sub-networks are smaller dense ResNets whose outputs equal the masked
parent's.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F

from sparsenas.models import MODELS, build_parent, describe_node_groups
from sparsenas.protocol import RunSpec, run
from sparsenas.report import write_report
from sparsenas.train import TrainSpec


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class SmallResNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.stage1 = nn.Sequential(Block(width, width, 1), Block(width, width, 1))
        self.stage2 = nn.Sequential(Block(width, 2 * width, 2), Block(2 * width, 2 * width, 1))
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.stage2(self.stage1(out))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.fc(out.view(out.size(0), -1))


@MODELS.register("own-resnet", help="example: a plain nn.Module ResNet-10 with BatchNorm and +=, groups discovered")
def own_resnet(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> nn.Module:
    return SmallResNet(input_shape[0], num_classes, *(widths or (16,)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--out", default="runs/own-resnet")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--width", type=int, default=16, help="channels of the first stage (the second has twice as many)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    print("\n".join(describe_node_groups(build_parent("own-resnet", (1, 8, 8), 10, seed=0, widths=(args.width,)).node_groups())))
    spec = RunSpec(
        dataset="digits",
        model="own-resnet",
        widths=(args.width,),
        finders=("dense", "random", "random-search"),
        sparsities=(0.5, 0.75),
        seeds=tuple(range(args.seeds)),
        candidates=8,
        train=TrainSpec(epochs=args.epochs, batch_size=64, lr=0.05, schedule="cosine"),
    )
    summary = run(spec, args.out)
    paths = write_report(args.out)
    print(f"{summary.ran} trials run in {time.perf_counter() - start:.1f} s; report: {paths['md']}")


if __name__ == "__main__":
    main()
