"""Do two run directories hold the same numbers, bit for bit? The check behind every speed change
that claims to keep every number: run one spec with the code before and after, then compare.

Compares, trial by trial (matched by key): status, every curve point (losses and accuracies as
stored floats), the masks, and the trained weights (unpacked, tensor by tensor with torch.equal).
Timings (wall and search seconds) are left out. Exit 0 when all agree, 1 otherwise, and one line
per differing trial.

    PYTHONPATH=/path/to/old/checkout/src python -m sparsenas run --limit 3000 --no-report --out /tmp/old
    python -m sparsenas run --limit 3000 --no-report --out /tmp/new
    python benchmarks/same_numbers.py /tmp/old /tmp/new
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

from sparsenas.store import Store
from sparsenas.store.weights import unpack_weights


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def differences(old_dir: str, new_dir: str) -> tuple[int, list[str]]:
    """(trials compared, one line per trial whose numbers differ) for two run directories."""
    old, new = Store(old_dir, create=False), Store(new_dir, create=False)
    a = {t.key: t for t in old.trials()}
    b = {t.key: t for t in new.trials()}
    out = [f"{k}: only in {old_dir}" for k in sorted(a.keys() - b.keys())]
    out += [f"{k}: only in {new_dir}" for k in sorted(b.keys() - a.keys())]
    for key in sorted(a.keys() & b.keys()):
        s, t = a[key], b[key]
        what = []
        if s.status != t.status:
            what.append(f"status {s.status} / {t.status}")
        if s.node_mask != t.node_mask or old.weight_mask(key) != new.weight_mask(key):
            what.append("mask")
        if len(s.curve) != len(t.curve):
            what.append(f"curve length {len(s.curve)} / {len(t.curve)}")
        for e, f in zip(s.curve, t.curve):
            pairs = zip((e.train_loss, e.val_loss, e.val_acc, e.test_acc), (f.train_loss, f.val_loss, f.val_acc, f.test_acc))
            if e.epoch != f.epoch or not all(_same_float(x, y) for x, y in pairs):
                what.append(f"curve from epoch {e.epoch}")
                break
        wa, wb = old.weights(key), new.weights(key)
        if (wa is None) != (wb is None):
            what.append("weights stored in one only")
        elif wa is not None and wb is not None:
            ta, tb = unpack_weights(wa), unpack_weights(wb)
            if ta.keys() != tb.keys() or not all(torch.equal(ta[n], tb[n]) for n in ta):
                what.append("weights")
        if what:
            out.append(f"{key} ({s.finder} s={s.sparsity:g} seed={s.seed}): {', '.join(what)}")
    return len(a.keys() & b.keys()), out


def main() -> int:
    ap = argparse.ArgumentParser(description="compare two run directories' numbers bit for bit")
    ap.add_argument("old")
    ap.add_argument("new")
    args = ap.parse_args()
    n, diff = differences(args.old, args.new)
    for line in diff:
        print(line)
    print(f"{n} trials compared, {len(diff)} differ")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
