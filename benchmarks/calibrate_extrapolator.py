"""Tune the learning-curve extrapolator's two free constants on stored runs, and check them on others.

The constants are `sparsenas.predict.curves.NOISE` (the residual sd a curve is assumed to have before
its own residuals say otherwise; it sets the spread of the fits through the delta method) and
`INFLATION` (a multiplier on every variance). For each pair on a grid, every finished trial's
validation-accuracy curve in the tuning runs is cut at 10%, 20% and 30% of its epochs and forecast to
its last epoch (sparsenas.predict.calibration says how a curve is cut); the pair whose central 50%
and 90% intervals cover the true final value closest to 50% and 90% (sum of squared misses over the
fractions; ties to the narrower 90% interval) wins. Then the winning pair is applied, unchanged, to
the held-out runs (another parent or dataset), and both are printed as markdown tables.

    python benchmarks/calibrate_extrapolator.py --tune /work/runs/fmnist /work/runs/weight-controls \
        --held-out /work/runs/resnet20-fmnist [--out FILE.md]

Stores are opened read-only (nothing is written to a run directory, so a run still training into one
is safe to read); a store's trials are those finished when it is read. Run with OMP_NUM_THREADS=1:
the fits are small and gain nothing from threads.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sparsenas.predict import curves
from sparsenas.predict.calibration import FRACTIONS, CalibrationRow, Curve, Extrapolation, cut, extrapolate, summarize
from sparsenas.store import Store

NOISES = (0.002, 0.003, 0.004, 0.006, 0.008, 0.011, 0.016)
INFLATIONS = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)


def load_curves(run_dir: Path) -> tuple[str, list[Curve]]:
    """(a description of the run, its finished trials' (epoch, val_acc) curves)."""
    with Store(run_dir, create=False) as store:
        spec, trials = store.spec() or {}, store.trials()
    done = [t for t in trials if t.status == "done"]
    epochs = sorted({len(t.curve) - 1 for t in done})
    what = f"{run_dir.name}: {spec.get('dataset', '?')} / {spec.get('model', '?')}, {spec.get('space', 'node')} space, {len(done)} finished trials of {'/'.join(map(str, epochs))} epochs"
    return what, [[(p.epoch, p.val_acc) for p in t.curve] for t in done]


def _inflated(ex: Sequence[Extrapolation], factor: float) -> list[Extrapolation]:
    return [Extrapolation(e.forecast.inflated(factor), e.actual, e.seen, e.total) for e in ex]


def _miss(rows: Sequence[CalibrationRow]) -> float:
    return sum((r.cover50 - 0.5) ** 2 + (r.cover90 - 0.9) ** 2 for r in rows if r.n)


def tune(curves_: Sequence[Curve], fractions: Sequence[float]) -> tuple[float, float, float]:
    """(noise, inflation, miss) of the grid point whose coverage is closest to nominal."""
    best: tuple[float, float, float, float] | None = None
    for noise in NOISES:
        # the fits do not depend on the inflation: fit once per noise, widen after
        base = {f: extrapolate(curves_, f, noise=noise, inflation=1.0) for f in fractions}
        for factor in INFLATIONS:
            rows = [summarize(f, _inflated(base[f], factor)) for f in fractions]
            key = (_miss(rows), sum(r.width90 for r in rows if r.n))
            if best is None or key < best[2:]:
                best = (noise, factor, *key)
    assert best is not None
    return best[0], best[1], best[2]


def last_value_mae(curves_: Sequence[Curve], fraction: float) -> float:
    """Mean |last seen value - final value|: what a forecast must beat to be worth making."""
    errs = [abs(c[1][-1] - c[3]) for c in (cut(curve, fraction) for curve in curves_) if c is not None]
    return sum(errs) / len(errs) if errs else math.nan


def table(name: str, curves_: Sequence[Curve], fractions: Sequence[float], noise: float, inflation: float) -> list[str]:
    out = []
    for f in fractions:
        r = summarize(f, extrapolate(curves_, f, noise=noise, inflation=inflation))
        seen = f"{r.seen[0]}" if r.seen[0] == r.seen[1] else f"{r.seen[0]}-{r.seen[1]}"
        out.append(
            f"| {name} | {f:g} | {r.n} | {seen} | {100 * r.mae:.2f} | {100 * r.median_ae:.2f} | {100 * r.bias:+.2f} | {100 * last_value_mae(curves_, f):.2f} "
            f"| {r.cover50:.2f} | {r.cover90:.2f} | {100 * r.width90:.2f} |"
        )
    return out


def time_one_forecast(curves_: Sequence[Curve], repeats: int = 200) -> float:
    """Median ms of one forecast from the first 10 trained epochs of the first curve that has 11."""
    curve = next(c for c in curves_ if sum(1 for e, _ in c if e > 0) >= 11)
    pts = [(e, v) for e, v in curve if e > 0]
    xs, ys, x_final = [e for e, _ in pts[:10]], [v for _, v in pts[:10]], pts[-1][0]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        curves.forecast(xs, ys, x_final)
        times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", nargs="+", type=Path, required=True, help="run directories whose curves tune the constants")
    ap.add_argument("--held-out", nargs="*", type=Path, default=[], help="run directories to check the tuned constants on")
    ap.add_argument("--fractions", default=",".join(map(str, FRACTIONS)), help="budget fractions, comma-separated")
    ap.add_argument("--out", type=Path, help="also write the markdown to this file")
    args = ap.parse_args(argv)
    fractions = [float(f) for f in args.fractions.split(",")]
    tuning = [load_curves(d) for d in args.tune]
    held = [load_curves(d) for d in args.held_out]
    pooled = list(itertools.chain.from_iterable(c for _, c in tuning))
    noise, inflation, miss = tune(pooled, fractions)
    shipped = (curves.NOISE, curves.INFLATION)
    header = "| curves | fraction | n | epochs seen | MAE pp | median AE pp | bias pp | last-value MAE pp | 50% coverage | 90% coverage | 90% width pp |"
    lines = [
        f"Date: {datetime.date.today().isoformat()}; {platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}.",
        "",
        f"Command: `{' '.join(['python', *sys.argv])}`",
        "",
        "Tuning curves:",
        *[f"- {what}" for what, _ in tuning],
        "",
        f"Grid: noise {', '.join(map(str, NOISES))} x inflation {', '.join(map(str, INFLATIONS))}. "
        f"Tuned: NOISE = {noise:g}, INFLATION = {inflation:g} (coverage miss {miss:.4f}). "
        f"Shipped in sparsenas.predict.curves: NOISE = {shipped[0]:g}, INFLATION = {shipped[1]:g}"
        + (" (the same)." if shipped == (noise, inflation) else " (DIFFERENT: update curves.py)."),
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
        *table("tuning, pooled (in-sample)", pooled, fractions, noise, inflation),
    ]
    if len(tuning) > 1:  # a pooled row can hide a run the constants suit less
        for what, c in tuning:
            lines += table(f"tuning: {what.split(':')[0]} (in-sample)", c, fractions, noise, inflation)
    for what, c in held:
        lines += table(f"held out: {what.split(':')[0]}", c, fractions, noise, inflation)
    if held:
        lines += ["", "Held-out curves:", *[f"- {what}" for what, _ in held]]
    lines += ["", f"One forecast from 10 points: {time_one_forecast(pooled):.1f} ms (median of 200, one thread)."]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
