"""Hand-built trials and stores for the report tests: no torch, no training, numbers worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

from sparsenas.store import EpochRecord, SearchCost, Store, TrialRecord

EPOCHS = 5
# final test accuracy per (finder, sparsity) and seed 0, 1, 2; nan marks the one diverged trial
ACC = {
    ("dense", 0.0): [0.97, 0.975, 0.98],
    ("random", 0.5): [0.90, 0.91, 0.92],
    ("random-search", 0.5): [0.93, 0.945, 0.95],
    ("random", 0.8): [0.85, 0.86, 0.84],
    ("random-search", 0.8): [0.855, 0.85, math.nan],
}
# convergence epoch (min val loss epoch) per cell and seed
CONV = {
    ("dense", 0.0): [5, 5, 5],
    ("random", 0.5): [5, 5, 5],
    ("random-search", 0.5): [3, 3, 4],
    ("random", 0.8): [5, 4, 5],
    ("random-search", 0.8): [5, 5, 2],
}


def trial(finder: str, sparsity: float, seed: int, acc: float, conv: int) -> TrialRecord:
    diverged = math.isnan(acc)
    final = 0.5 if diverged else acc
    # Val accuracy climbs towards the final value: final * (1 - 2^-(e+1)), then exactly final.
    vals = [final * (1 - 0.5 ** (e + 1)) for e in range(EPOCHS)] + [final]
    if diverged:
        vals = vals[:3]  # training stopped at a non-finite loss after epoch 2
    curve = tuple(EpochRecord(e, 1 - v, 1 - v, v, v) for e, v in enumerate(vals))
    kept = round(100 * (1 - sparsity))
    return TrialRecord(
        key=f"{finder}-{sparsity}-{seed}", finder=finder, sparsity=sparsity, seed=seed,
        status="diverged" if diverged else "done", node_sparsity=sparsity, weight_sparsity=1 - (1 - sparsity) ** 2,
        params=kept * 80 + 10, flops=2 * kept * 80, kept_nodes=(kept,), node_mask=(tuple(range(kept)),),
        final_test_acc=acc, best_val_epoch=len(vals) - 1, best_val_test_acc=acc, min_val_loss_epoch=conv,
        wall_seconds=2.0,
        search=SearchCost(candidates=16, steps=160, flops=1e6, seconds=0.5) if finder == "random-search" else SearchCost(),
        curve=curve,
    )


def store(run_dir: Path, cells: list[tuple[str, float]]) -> Path:
    with Store(run_dir) as s:
        s.set_spec({"dataset": "digits", "model": "lenet-300-100", "finders": ["random", "random-search"],
                    "sparsities": [0.5, 0.8], "seeds": [0, 1, 2], "epochs": EPOCHS})
        for cell in cells:
            for seed, (acc, conv) in enumerate(zip(ACC[cell], CONV[cell])):
                s.put(trial(*cell, seed, acc, conv))
    return run_dir
