"""Picking a front from evaluated candidates: by non-dominated rank, spread along the cost.

Shared by `nsga2` (the front it trains) and its surrogate (the untrained candidates it proposes), so
neither imports the other for it.
"""

from __future__ import annotations

import numpy as np


def pick_front(points: np.ndarray, k: int) -> list[int]:
    """Indices of `k` points (rows: objectives to minimize; column 1 the cost), by non-dominated
    rank; the last rank that does not fit whole gives members evenly spaced along the cost.
    Returned cheapest first.

    >>> pick_front(np.array([[0.1, 3.0], [0.2, 2.0], [0.3, 1.0], [0.3, 3.0]]), 2)
    [2, 0]
    """
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    fronts = NonDominatedSorting().do(points, n_stop_if_ranked=len(points))
    chosen: list[int] = []
    for front in fronts:
        front = sorted(front.tolist(), key=lambda i: (points[i, 1], points[i, 0], i))
        need = k - len(chosen)
        if need <= 0:
            break
        if len(front) <= need:
            chosen += front
        else:
            chosen += [front[int(j)] for j in np.linspace(0, len(front) - 1, need).round()]
    return sorted(chosen, key=lambda i: (points[i, 1], points[i, 0], i))
