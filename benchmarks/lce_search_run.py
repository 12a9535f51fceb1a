"""lce-search in a stored run, against random-search and halving on the same candidates, and against
itself with nothing stopped (a second run directory made with --lce-stop 0): search cost per cell, and
whether the pick is the same mask.

    python benchmarks/lce_search_run.py runs/lce-fmnist runs/lce-fmnist-nostop
"""

from __future__ import annotations

import argparse
import statistics

from sparsenas.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="the run with lce-search, random-search (and halving)")
    ap.add_argument("nostop", help="a run of lce-search with --lce-stop 0, same candidates and budget")
    a = ap.parse_args()
    with Store(a.run) as s, Store(a.nostop) as n:
        trials = {(t.finder, t.sparsity, t.seed): t for t in s.trials() if not t.check}
        full = {(t.sparsity, t.seed): t for t in n.trials() if t.finder == "lce-search"}
    cells = sorted({(sp, seed) for f, sp, seed in trials if f == "lce-search"})
    print(
        "| sparsity | seed | lce steps | FLOPs vs random-search | vs lce, nothing stopped | halving FLOPs vs random-search | same pick as nothing stopped | test acc lce / nothing stopped / random-search |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ratios, fulls, halvings, secs, same = [], [], [], [], 0
    missing = [c for c in cells if c not in full or ("random-search", *c) not in trials]
    if missing:
        raise SystemExit(f"cells {missing} lack a random-search trial or an lce-search trial in {a.nostop}; finish both runs first")
    for sp, seed in cells:
        lce, rs, hv = trials[("lce-search", sp, seed)], trials[("random-search", sp, seed)], trials.get(("halving", sp, seed))
        ref = full[(sp, seed)]
        r, f = lce.search.flops / rs.search.flops, lce.search.flops / ref.search.flops
        h = hv.search.flops / rs.search.flops if hv else float("nan")
        eq = lce.node_mask == ref.node_mask
        ratios.append(r), fulls.append(f), halvings.append(h), secs.append(lce.search.seconds / rs.search.seconds)
        same += eq
        print(
            f"| {sp} | {seed} | {lce.search.steps} | {r:.2f} | {f:.2f} | {h:.2f} | {'yes' if eq else 'no'} | "
            f"{100 * lce.final_test_acc:.2f} / {100 * ref.final_test_acc:.2f} / {100 * rs.final_test_acc:.2f} |"
        )
    print(
        f"\nmean FLOPs ratio: lce-search / random-search {statistics.mean(ratios):.2f}, lce-search / nothing stopped "
        f"{statistics.mean(fulls):.2f}, halving / random-search {statistics.mean(halvings):.2f}; same pick in {same} of {len(cells)} cells; "
        f"search seconds lce-search / random-search {statistics.mean(secs):.2f} (forecasts included; a shared machine's seconds are rough)"
    )


if __name__ == "__main__":
    main()
