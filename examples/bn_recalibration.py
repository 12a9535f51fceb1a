"""Why a fine-tuned channel-pruned ResNet starts at chance: its BatchNorm statistics, checked on a run.

A `finetune` start cuts the trained parent to the finder's channels and keeps each kept channel's
BatchNorm running statistics. Those were measured with every input channel of the conv before it
present; with a share of them gone, the pre-activations shift and the stale statistics normalize
them wrongly. This script reads a finished run that has `--starts finetune`, takes each seed's trained
dense parent cut to the finder's mask (the finetune start's epoch 0, for finders whose trained parent
is the dense one: l1-norm, magnitude), and prints its validation accuracy as stored, then after
re-estimating the running statistics on a few training batches (train-mode forwards, no gradient
step): the "adaptive BatchNorm" of EagleEye (Li et al. 2020). It is a check beside the protocol, not
an option of it: sparsenas fine-tunes the network as cut.

    python examples/bn_recalibration.py runs/channels --finder l1-norm --batches 20
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from sparsenas.errors import SparsenasError
from sparsenas.export import load_trained
from sparsenas.masks import NodeMask, compact
from sparsenas.store import Store
from sparsenas.train import Population, TrainSpec


def recalibrate(net: nn.Module, x: torch.Tensor, batches: int, batch_size: int = 128) -> None:
    """Re-estimate every BatchNorm's running statistics of `net` from the first `batches` batches of
    `x`, as a cumulative average (momentum None); the weights are untouched.

    >>> bn = nn.BatchNorm1d(2); recalibrate(nn.Sequential(bn), torch.tensor([[1.0, 2.0], [3.0, 6.0]]), 1)
    >>> bn.running_mean.tolist()
    [2.0, 4.0]
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = net.training
    net.train()
    with torch.no_grad():
        for i in range(batches):
            xb = x[i * batch_size : (i + 1) * batch_size]
            if len(xb):
                net(xb)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    net.train(was_training)


def check(run_dir: str, finder: str, batches: int, data_dir: str | None = None) -> list[tuple[float, int, float, float]]:
    """(node sparsity, seed, val accuracy as cut, val accuracy recalibrated) for each stored
    `<finder>~finetune` trial of `run_dir`, in order.

    "As cut" must be the trial's own epoch 0 (its stored validation loss): a finder whose finetune start is
    another net than the trained dense parent (bn-scale's penalized parent, IMP's last round) is
    refused rather than measured on the wrong net."""
    if batches < 1:
        raise SparsenasError(f"--batches must be at least 1, got {batches}")
    with Store(run_dir, create=False) as store:
        trials = store.trials()
    dense = {t.seed: t for t in trials if t.finder == "dense" and t.status == "done"}
    tuned = sorted((t for t in trials if t.finder == finder and t.check == "finetune"), key=lambda t: (t.sparsity, t.seed))
    if not tuned:
        raise SparsenasError(f"'{run_dir}' holds no {finder}~finetune trials; run it with --finders dense,{finder} --starts finetune")
    out = []
    if any(t.space == "weight" for t in tuned):
        raise SparsenasError(f"'{run_dir}' is a weight-space run; channels are cut in the node space (--space node)")
    for t in tuned:
        if t.seed not in dense:
            raise SparsenasError(f"'{run_dir}' holds no finished dense trial of seed {t.seed}; add --finders dense and resume the run")
        _, data, parent, _ = load_trained(run_dir, dense[t.seed].key, data_dir)
        small = compact(parent, NodeMask(tuple(tuple(k) for k in t.node_mask)))
        (loss,), (as_cut,) = Population([small], TrainSpec()).evaluate(data.val)
        if abs(loss - t.curve[0].val_loss) > 1e-5 * abs(loss):  # the loss tells nets apart where accuracies tie at chance
            raise SparsenasError(
                f"{finder}~finetune of seed {t.seed} does not start from the trained dense parent (its epoch-0 validation "
                f"loss is {t.curve[0].val_loss:.5f}, the cut parent's {loss:.5f}); use a finder that fine-tunes it, e.g. l1-norm"
            )
        recalibrate(small, data.train.x, batches)
        _, (recal,) = Population([small], TrainSpec()).evaluate(data.val)
        out.append((t.sparsity, t.seed, as_cut, recal))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--finder", default="l1-norm", help="a finder whose finetune start is the trained dense parent (l1-norm, magnitude)")
    ap.add_argument("--batches", type=int, default=20, help="training batches of 128 to re-estimate the statistics on")
    ap.add_argument("--data-dir", default=None, help="where the run's dataset lives, if not its default place")
    args = ap.parse_args(argv)
    try:
        rows = check(args.run_dir, args.finder, args.batches, args.data_dir)
    except SparsenasError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"| node sparsity | seed | val acc as cut % | after recalibration on {args.batches} batches % |")
    print("|---|---|---|---|")
    for s, seed, a, b in rows:
        print(f"| {s:g} | {seed} | {a * 100:.2f} | {b * 100:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
