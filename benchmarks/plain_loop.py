"""The protocol as a user writes it without populations: each sub-network trained alone in a plain
PyTorch loop. The baseline `benchmarks/protocol.py` times `sparsenas run` against.

The masks are sparsenas's own (the same plan and finders, `protocol.find`), so both sides train the
same sub-networks with the same hyperparameters; what differs is only how they train:

- `--how compacted` (default): each node sub-network as its compacted dense network, minibatches
  sliced from in-memory tensors, validation and test evaluated at init and after every epoch;
- `--how masked-dataloader`: each as the full-size parent with its node mask multiplied into the
  weights after every step, minibatches from a `torch.utils.data.DataLoader` (what `sparsenas
  bench` calls method (a)), evaluated the same way.

Prints one line, `plain loop: N trials in S s`, and each trial's final test accuracy with `--verbose`.

    python benchmarks/plain_loop.py --dataset fashion-mnist --model lenet-300-100 \
        --finders dense,random,random-search --sparsities 0.5,0.8,0.9,0.95 --seeds 5 --epochs 20 \
        --batch-size 128 --schedule cosine
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from sparsenas.data import Split, load_dataset
from sparsenas.masks import NodeMask, apply_weight_masks, compact, weight_masks
from sparsenas.models import build_parent
from sparsenas.protocol import RunSpec, make_plan
from sparsenas.protocol.find import find
from sparsenas.train import TrainSpec


@torch.no_grad()
def evaluate(net: nn.Module, split: Split, rows: int = 4096) -> tuple[float, float]:
    net.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(split), rows):
        x, y = split.x[i : i + rows], split.y[i : i + rows]
        out = net(x)
        loss += F.cross_entropy(out, y, reduction="sum").item()
        correct += int((out.argmax(1) == y).sum())
    net.train()
    return loss / len(split), correct / len(split)


def train_alone(net: nn.Module, data, spec: TrainSpec, seed: int, masks: dict[str, torch.Tensor] | None, loader: bool) -> float:
    """Train `net` alone; with `masks`, re-apply them after every step. Returns the final test accuracy."""
    opt = torch.optim.SGD(net.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    n = len(data.train)
    steps = spec.epochs * math.ceil(n / spec.batch_size)
    order = torch.Generator().manual_seed(seed)
    if loader:
        batches_of = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=spec.batch_size, shuffle=True, generator=order)
    tensors = dict(net.named_parameters()) | dict(net.named_buffers())
    evaluate(net, data.val), evaluate(net, data.test)
    step = 0
    acc = 0.0
    for _ in range(spec.epochs):
        if loader:
            epoch = iter(batches_of)
        else:
            perm = torch.randperm(n, generator=order)
            epoch = ((data.train.x[perm[i : i + spec.batch_size]], data.train.y[perm[i : i + spec.batch_size]]) for i in range(0, n, spec.batch_size))
        for x, y in epoch:
            factor = 0.5 * (1 + math.cos(math.pi * step / steps)) if spec.schedule == "cosine" else 1.0
            for g in opt.param_groups:
                g["lr"] = spec.lr * factor
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if masks is not None:
                with torch.no_grad():  # the removed nodes' weights back to zero, in place
                    for name, m in masks.items():
                        tensors[name].mul_(m)
            step += 1
        evaluate(net, data.val)
        acc = evaluate(net, data.test)[1]
    return acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--finders", default="dense,random,random-search")
    ap.add_argument("--sparsities", default="0.5,0.8,0.9,0.95")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--controls", type=int, default=1)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--schedule", default="constant")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--how", choices=("compacted", "masked-dataloader"), default="compacted")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    start = time.perf_counter()
    train = TrainSpec(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, schedule=a.schedule)
    spec = RunSpec(
        dataset=a.dataset,
        model=a.model,
        finders=tuple(a.finders.split(",")),
        sparsities=tuple(float(s) for s in a.sparsities.split(",")),
        seeds=tuple(range(a.seeds)),
        controls=a.controls,
        candidates=a.candidates,
        limit=a.limit,
        train=train,
    ).validate()
    data = load_dataset(spec.dataset, None, spec.limit)
    widths = tuple(g.size for g in build_parent(spec.model, data.input_shape, data.num_classes, 0).node_groups())
    plan = make_plan(spec, widths)
    for seed in spec.seeds:
        parent = build_parent(spec.model, data.input_shape, data.num_classes, seed, spec.widths)
        memo: dict = {}
        for t in (t for t in plan if t.seed == seed):
            mask = find(parent, data, spec, t, memo).mask
            assert isinstance(mask, NodeMask), "the plain loop trains node masks"
            if a.how == "compacted":
                net, masks = compact(parent, mask), None
            else:
                masks = weight_masks(parent, mask)
                net = apply_weight_masks(parent, masks)  # a copy: the full-size parent, removed nodes zeroed
            acc = train_alone(net, data, train, seed, masks, loader=a.how == "masked-dataloader")
            if a.verbose:
                print(f"{t.finder} s={t.sparsity} seed={seed} control={t.control}: test {acc:.4f}")
    print(f"plain loop: {len(plan)} trials in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
