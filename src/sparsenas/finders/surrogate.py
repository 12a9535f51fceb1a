"""nsga2's surrogate (`--predictor ridge|gbm`): LINAS-style predictor-guided NSGA-II.

LINAS (DyNAS-T; Cummings et al. 2022, "Accelerating neural architecture exploration across
modalities using genetic algorithms") puts a cheap regressor over sub-network configurations inside
the evolutionary loop. Here the first generation is plain NSGA-II's (the same `evo_population`
random width vectors); after it, every generation:

1. a regressor is fitted on every candidate trained so far: features are the per-layer widths as
   fractions of the parent's, with the cost relative to the parent's where the cost is exact; the
   target is the proxy error. Ridge also gets the fractions' logs, standardized: the error falls off
   with width like a log, which a linear model sees only so (on seeds 3 and 4 of
   benchmarks/nsga2_surrogate.py, not those reported, its hypervolume rose from 0.7170 to 0.7243;
   trees are blind to a monotone transform, and gbm's fell from 0.7246 to 0.7211 with them). `ridge` is scikit-learn's `Ridge` (alpha 1),
   `gbm` its `GradientBoostingRegressor` (100 trees of depth 3, random_state from the finder's
   generator);
2. an inner NSGA-II (`predictor_pool` candidates, `INNER_GENERATIONS` generations, the outer search's
   operators) minimizes the predicted error and the cost, starting from the trained candidates of
   the best ranks and random width vectors. Params and FLOPs are exact there: a quadratic in the
   widths, fitted to the counts of a few compacted sub-networks and checked on others (counted one by
   one where the check fails). Latency must be measured, so in the inner search it is the same kind of
   regressor fitted to the latencies measured on the trained candidates;
3. of every width vector the inner search tried and no generation trained, `evo_population` are
   picked by predicted rank, spread along the cost (`pick_front`), and trained for real.

Only those real trainings are evaluations: they are what the search charges (candidates, steps,
FLOPs), and the front is picked from them alone, by their measured proxy error and cost. Fitting and
the inner search add seconds only. A width vector is never trained twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import SparsenasError
from .front import pick_front

INNER_GENERATIONS = 20
Widths = tuple[int, ...]


def regressor(name: str, seed: int) -> Any:
    """A fresh scikit-learn regressor for `--predictor name`.

    >>> type(regressor("gbm", 0)).__name__
    'GradientBoostingRegressor'
    >>> regressor("xgb", 0)
    Traceback (most recent call last):
    sparsenas.errors.SparsenasError: --predictor must be one of ridge, gbm for a surrogate, got 'xgb'
    """
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "ridge":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    if name == "gbm":
        return GradientBoostingRegressor(n_estimators=100, max_depth=3, learning_rate=0.1, random_state=seed)
    raise SparsenasError(f"--predictor must be one of ridge, gbm for a surrogate, got {name!r}")


def quadratic_terms(x: np.ndarray) -> np.ndarray:
    """(N, L) -> (N, 1 + L + L(L+1)/2): 1, each x_l and each product x_l x_m (l <= m).

    >>> quadratic_terms(np.array([[2.0, 3.0]])).tolist()
    [[1.0, 2.0, 3.0, 4.0, 6.0, 9.0]]
    """
    n, width = x.shape
    pairs = [x[:, i] * x[:, j] for i in range(width) for j in range(i, width)]
    return np.column_stack([np.ones(n), x, *pairs])


def exact_cost_model(cost: Callable[[Widths], float], sizes: Widths, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """`cost` of many width vectors at once (rows of an (N, L) integer array).

    A parameter or FLOP count of a compacted sub-network is a quadratic in its layer widths (a weight
    tensor spans at most two node groups; biases, BatchNorm and conv positions are linear), so it is
    fitted to `cost` at random width vectors and checked on others; if the check fails (a cost that is
    not quadratic), every new width vector is counted by `cost` itself, once.

    >>> model = exact_cost_model(lambda w: 3.0 * w[0] * w[1] + w[0] + 5, (30, 20), np.random.default_rng(0))
    >>> model(np.array([[7, 11], [30, 20]])).round(6).tolist()
    [243.0, 1835.0]
    >>> model = exact_cost_model(lambda w: float(w[0] ** 3), (30,), np.random.default_rng(0))
    >>> model(np.array([[7], [3]])).tolist()
    [343.0, 27.0]
    """
    scale = np.array(sizes, dtype=float)
    terms = quadratic_terms(np.ones((1, len(sizes)))).shape[1]
    rows = rng.integers(1, scale + 1, size=(2 * terms + 8, len(sizes)))
    fit, check = rows[:-4], rows[-4:]
    y = np.array([cost(tuple(int(v) for v in r)) for r in fit])
    coef = np.linalg.lstsq(quadratic_terms(fit / scale), y, rcond=None)[0]
    predicted = quadratic_terms(check / scale) @ coef
    if np.allclose(predicted, [cost(tuple(int(v) for v in r)) for r in check], rtol=1e-6, atol=1e-6):
        return lambda x: quadratic_terms(np.asarray(x) / scale) @ coef
    counted: dict[Widths, float] = {}

    def one_by_one(x: np.ndarray) -> np.ndarray:
        for r in map(tuple, np.asarray(x).tolist()):
            if r not in counted:
                counted[r] = cost(r)
        return np.array([counted[tuple(r)] for r in np.asarray(x).tolist()])

    return one_by_one


def hypervolume(points: Sequence[tuple[float, float]], parent_cost: float, ref: tuple[float, float] = (1.0, 1.0)) -> float:
    """Area that (error, cost) `points` dominate up to `ref`, cost taken relative to the parent's so
    runs on different parents compare; a point beyond `ref` adds nothing. (The report's
    `pareto.hypervolume` does the same for trained trials; a finder may not import the report.)

    >>> hypervolume([(0.5, 50.0)], 100.0), hypervolume([(0.5, 50.0), (0.25, 75.0)], 100.0), hypervolume([(0.2, 300.0)], 100.0)
    (0.25, 0.3125, 0.0)
    """
    from pymoo.indicators.hv import HV

    inside = [(e, c / parent_cost) for e, c in points if math.isfinite(e) and math.isfinite(c)]
    inside = [p for p in inside if p[0] < ref[0] and p[1] < ref[1]]
    if not inside:
        return 0.0
    return float(HV(ref_point=np.array(ref))(np.array(inside, dtype=float)))


class SearchBudget(Protocol):
    """What the surrogate reads of nsga2's options (`NSGA2Options`; typed structurally, so this module
    does not import nsga2, which imports it)."""

    @property
    def generations(self) -> int: ...
    @property
    def evo_population(self) -> int: ...
    @property
    def predictor(self) -> str: ...
    @property
    def predictor_pool(self) -> int: ...


def guided_search(
    algorithm: Any,
    problem: Any,
    seed: int,
    objectives: Callable[[list[Widths]], np.ndarray],
    exact: Callable[[Widths], float] | None,
    options: SearchBudget,
    inner_seed: int,
) -> None:
    """Train the first generation plain NSGA-II (`algorithm` on `problem`, seeded `seed`) would, then
    each later generation the candidates the surrogate proposes.

    `objectives(rows)` trains the width vectors in `rows` that were never trained and returns every
    row's (proxy error, cost); `exact` is the cost of one width vector where it is exact (params,
    FLOPs), None for latency. Everything after the first generation is drawn from `inner_seed`."""
    algorithm.setup(problem, termination=("n_gen", 1), seed=seed, verbose=False)
    rows = list(dict.fromkeys(tuple(int(v) for v in r) for r in algorithm.ask().get("X").round().astype(int)))
    sizes = tuple(int(v) for v in problem.xu)
    rng = np.random.default_rng(inner_seed)
    trained: dict[Widths, tuple[float, float]] = {}
    model = None if exact is None else exact_cost_model(exact, sizes, rng)
    generations = max(1, options.generations)
    for g in range(generations):
        trained.update(zip(rows, map(tuple, objectives(rows).tolist())))
        if g == generations - 1 or len(trained) == math.prod(sizes):
            return
        rows = propose(trained, sizes, model, options, rng)
        if not rows:
            return  # the inner search tried nothing untrained (a tiny space): nothing new to train


def propose(
    trained: dict[Widths, tuple[float, float]],
    sizes: Widths,
    exact: Callable[[np.ndarray], np.ndarray] | None,
    options: SearchBudget,
    rng: np.random.Generator,
) -> list[Widths]:
    """The next generation: `evo_population` untrained width vectors picked from the inner search
    (`exact`: the cost of many width vectors where it is exact, None for latency)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.optimize import minimize

    scale = np.array(sizes, dtype=float)
    x = np.array(list(trained), dtype=int)  # (N, L) widths
    f = np.array(list(trained.values()))  # (N, 2) proxy error, cost
    fit_seed = int(rng.integers(2**31 - 1))
    cost: Callable[[np.ndarray], np.ndarray]

    logs = options.predictor == "ridge"  # see the module's docstring

    def features(rows: np.ndarray) -> np.ndarray:  # (N, L) widths -> (N, L [+ L] [+ 1]): fractions [, logs] [, relative cost]
        out = [rows / scale, *([np.log(rows / scale)] if logs else [])]
        if exact is not None:
            out.append(exact(rows)[:, None] / exact(scale[None].astype(int)))
        return np.column_stack(out)

    if exact is None:  # latency: measured on the trained candidates only, so regressed like the error
        latency = regressor(options.predictor, fit_seed).fit(x / scale, f[:, 1])
        cost = lambda rows: latency.predict(rows / scale)  # noqa: E731
    else:
        cost = exact
    error = regressor(options.predictor, fit_seed).fit(features(x), f[:, 0])
    tried: dict[Widths, tuple[float, float]] = {}

    class Predicted(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=len(sizes), n_obj=2, xl=np.ones(len(sizes)), xu=scale, vtype=int)

        def _evaluate(self, xs: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
            rows = np.asarray(xs).round().astype(int)
            out["F"] = np.column_stack([error.predict(features(rows)), cost(rows)])
            tried.update(zip(map(tuple, rows.tolist()), map(tuple, out["F"].tolist())))

    pool = options.predictor_pool
    best = x[pick_front(f, min(pool, len(x)))]  # the trained candidates of the best ranks, then random ones
    start = np.concatenate([best, rng.integers(1, scale + 1, size=(pool - len(best), len(sizes)))]).astype(float)
    algorithm = NSGA2(
        pop_size=pool,
        sampling=start,
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    minimize(Predicted(), algorithm, ("n_gen", INNER_GENERATIONS), seed=int(rng.integers(2**31 - 1)), verbose=False)
    fresh = [w for w in tried if w not in trained]
    if not fresh:
        return []
    points = np.array([tried[w] for w in fresh])
    return [fresh[i] for i in pick_front(points, min(options.evo_population, len(fresh)))]
