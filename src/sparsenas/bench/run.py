"""The benchmark itself: every method on every sparsity and population size, then (d) checked
against (a) in float64. `run_bench` is the entry point `sparsenas bench` calls."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import torch

from ..data import Dataset, Split, load_dataset
from ..errors import SparsenasError
from ..masks import NodeMask, allocate, compact, random_mask
from ..models import Parent, build_parent
from ..train import TrainSpec, tune_malloc
from .flops import mm_peak_gflops, train_flops_per_sample
from .methods import BATCH, METHODS, _masked_alone, _measure, _population
from .table import check_words


@dataclass(frozen=True)
class Row:
    sparsity: float
    k: int
    method: str
    subnet_epochs_per_s: float
    speedup_vs_a: float
    useful_gflops: float
    of_mm_peak: float
    peak_mib: float  # process peak during the measurement
    added_mib: float  # of which the measurement added over the memory held before it


INPUT_SHAPE, CLASSES = (1, 28, 28), 10  # Fashion-MNIST's, and the random stand-in's


def bench_data(device: torch.device) -> tuple[Split, str]:
    """Fashion-MNIST's training split if it is installed, else random data of the same shape."""
    try:
        ds: Dataset = load_dataset("fashion-mnist")
        return ds.train.to(device), f"Fashion-MNIST train split ({len(ds.train)} samples)"
    except SparsenasError:
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(55000, *INPUT_SHAPE, generator=g), torch.randint(0, CLASSES, (55000,), generator=g)
        return Split(x, y).to(device), "random data shaped like Fashion-MNIST (55000 x 1x28x28; the dataset is not installed)"


def run_bench(
    sparsities: Sequence[float] = (0.5, 0.8, 0.95),
    populations: Sequence[int] = (8, 32, 128),
    steps: int = 100,
    alone: int = 4,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    model: str = "lenet-300-100",
    widths: tuple[int, ...] | None = None,
    check_steps: int | None = None,
    threads: int | None = None,
    rounds: int = 1,
) -> dict[str, Any]:
    """Measure methods (a)-(d) on parent `model`; returns the rows, the mm peak and the equality check.

    For each node sparsity in `sparsities` and population size K in `populations`: (a)-(c) are timed
    on `alone` sub-networks (at most the smallest K), (d) on K, each for `steps` steps on `device`
    ("cpu" or "cuda"), and all of that `rounds` times in turn (see `_time_methods`; rates are over
    every round). `model` is any registered parent (`widths` as `sparsenas run --widths` takes
    them), built for Fashion-MNIST's 1x28x28 images; an unknown one is refused before anything runs.
    The float64 check trains `check_steps` steps (default `steps`). `threads` sets torch's thread
    count for the run (default: as it is). `log` gets the progress lines. The result is plain
    JSON-able data: `to_markdown` renders it, `sparsenas bench --out FILE.json` writes it.

    Skipped as a doctest (seconds: the mm peak alone takes 1.5 s); tests/test_bench.py runs it.

    >>> r = run_bench((0.9,), (2,), steps=3, alone=1, log=lambda s: None)  # doctest: +SKIP
    >>> [row["method"] for row in r["rows"]], r["equality"][0]["equal"]  # doctest: +SKIP
    (['a', 'b', 'c', 'd'], True)
    """
    dev = torch.device(device)
    # first: an unknown model or bad widths is one line before a second is spent
    parent = build_parent(model, INPUT_SHAPE, CLASSES, seed=0, widths=widths).to(dev)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)  # restored below: an API caller's process keeps its setting
    try:
        sweep = _Sweep(tuple(sparsities), tuple(populations), steps, alone, rounds, steps if check_steps is None else check_steps)
        return _run(parent, model, widths, sweep, dev, log)
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class _Sweep:
    """What `run_bench` was asked to time (its arguments, checked by the CLI)."""

    sparsities: tuple[float, ...]
    populations: tuple[int, ...]
    steps: int
    alone: int
    rounds: int
    check_steps: int


def _run(
    parent: Parent, model: str, widths: tuple[int, ...] | None, sweep: _Sweep, dev: torch.device, log: Callable[[str], None]
) -> dict[str, Any]:
    machine = _machine()
    tune_malloc()
    torch.manual_seed(0)
    data, data_note = bench_data(dev)
    spec = TrainSpec(lr=0.05, momentum=0.9)
    steps_per_epoch = math.ceil(len(data) / BATCH)
    peak, peak_n = mm_peak_gflops(dev)
    n_params = sum(p.numel() for p in parent.parameters())
    described = f"{model}" + (f" (widths {','.join(map(str, widths))})" if widths else "")
    turns = f", {sweep.rounds} rounds" if sweep.rounds > 1 else ""
    log(
        f"model {described}: {n_params:,} parameters; data: {data_note}; {sweep.steps} steps of batch {BATCH} per sub-network{turns}; device {dev}"
    )
    log(f"{machine['cpus']} CPUs, torch threads {machine['threads']}, load average {machine['load_average'][0]:.1f} at the start")
    log(f"torch.mm peak: {peak:.0f} GFLOP/s ({peak_n}x{peak_n} fp32)")
    groups = parent.node_groups()
    rows: list[Row] = []
    check_masks: dict[float, list[NodeMask]] = {}
    for s in sweep.sparsities:
        gen = torch.Generator().manual_seed(0)
        masks = [random_mask(groups, allocate(groups, s), gen) for _ in range(max(sweep.populations))]
        flops = train_flops_per_sample(compact(parent, masks[0]), INPUT_SHAPE) * BATCH * sweep.steps  # per sub-network
        spent = _time_methods(parent, masks, sweep, data, spec, dev)
        for k in sweep.populations:
            # sub-networks per second: (a)-(c) trained `alone` of them each round, (d) K
            rate = {m: sweep.alone * sweep.rounds / spent[m][0] for m in "abc"} | {"d": k * sweep.rounds / spent[k][0]}
            mem = {m: spent[m][1:] for m in "abc"} | {"d": spent[k][1:]}
            for method in "abcd":
                gf = rate[method] * flops / 1e9
                rows.append(
                    Row(s, k, method, rate[method] * sweep.steps / steps_per_epoch, rate[method] / rate["a"], gf, gf / peak, *mem[method])
                )
        check_masks[s] = masks[: min(max(sweep.populations), 8)]
        for r in rows:
            if r.sparsity == s:
                log(
                    f"  s={r.sparsity:g} K={r.k:<4} ({r.method}) {METHODS[r.method]:<21} {r.subnet_epochs_per_s:9.4g} subnet-epochs/s "
                    f"{r.speedup_vs_a:7.1f}x  {r.useful_gflops:6.1f} GFLOP/s ({r.of_mm_peak:5.1%} of mm peak)  "
                    f"peak {r.peak_mib:6.0f} MiB (+{r.added_mib:.0f})"
                )
    machine["load_average"][1] = _load()  # before the check: the timed part is over
    # after every timing, so no check's float64 copies are in memory while a method is timed
    checks = [equality_check(parent, m, data, sweep.check_steps, spec, sweep.alone, s) for s, m in check_masks.items()]
    for c in checks:
        log(f"  equality s={c['sparsity']:g}: {check_words(c)}")
    return {
        "model": model,
        "widths": list(widths) if widths else None,
        "parameters": n_params,
        "device": str(dev),
        "data": data_note,
        "steps": sweep.steps,
        "rounds": sweep.rounds,
        "batch": BATCH,
        "mm_peak_gflops": peak,
        "mm_peak_size": peak_n,
        "rows": [asdict(r) for r in rows],
        "equality": checks,
        "torch": torch.__version__,
        **machine,
    }


def _time_methods(
    parent: Parent, masks: list[NodeMask], sweep: _Sweep, data: Split, spec: TrainSpec, dev: torch.device
) -> dict[str | int, tuple[float, float, float]]:
    """Seconds (summed), peak MiB and added MiB (the largest) of (a), (b), (c) on `sweep.alone`
    sub-networks each and of (d) at every K (keyed by K), at one sparsity.

    The methods take turns `sweep.rounds` times, each turn a fresh training of `sweep.steps` steps:
    on a shared machine the load of other processes changes by the minute, and one long stretch per
    method would charge such a change to whichever method ran then; in turns, every method meets it.
    """
    spent: dict[str | int, tuple[float, float, float]] = {}

    def add(key: str | int, secs: float, pk: float, added: float) -> None:
        was = spent.get(key, (0.0, 0.0, 0.0))
        spent[key] = (was[0] + secs, max(was[1], pk), max(was[2], added))

    for _ in range(sweep.rounds):
        for method in ("a", "b", "c"):
            for i in range(sweep.alone):
                if method == "c":
                    net = compact(parent, masks[i])
                    add(method, *_measure(dev, lambda: _population([net], data, sweep.steps, spec)))
                else:
                    loader = method == "a"
                    add(method, *_measure(dev, lambda: _masked_alone(parent, masks[i], data, sweep.steps, spec, loader)[1]))
        for k in sweep.populations:
            nets = [compact(parent, m) for m in masks[:k]]
            add(k, *_measure(dev, lambda: _population(nets, data, sweep.steps, spec)))
    return spent


def _load() -> float:
    """The 1-minute load average: runnable processes, this one included (0 where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def _machine() -> dict[str, Any]:
    """What the figures depend on beside the code: cores, torch threads, the date, and how busy the
    machine was (the load average before the bench ran is other processes' alone)."""
    return {
        "cpus": os.cpu_count() or 1,
        "threads": torch.get_num_threads(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [_load(), _load()],  # at the start, and (set later) when the timing ended
    }


def equality_check(
    parent: Parent, masks: list[NodeMask], data: Split, steps: int, spec: TrainSpec, compare: int, sparsity: float
) -> dict[str, Any]:
    """Train (a) alone and (d) as one population of len(masks) in float64, same init and batches, for
    `steps` steps; compare the first `compare` members' kept tensors and their eval-mode logits.

    float64, because fp32 trajectories of the same network separate chaotically: measured here, the
    masked and the compacted LeNet-300-100 at node sparsity 0.5 agree to 3e-7 after 50 steps and
    2e-5 after 100, with no difference in the arithmetic they mean. In float64 that noise is ~1e-13,
    so any real difference (a wrong slice, a leaked gradient) shows far above it.

    Both sides train in train mode (BatchNorm on batch statistics), and every tensor is compared:
    weights, and BatchNorm's running mean and variance, which only eval mode reads. So the logits of
    one batch are compared in eval mode too: a removed channel of the masked parent must give zero
    there as well (its running statistics, scale and shift are all masked to zero).
    """
    parent64 = copy.deepcopy(parent).double()
    n = min(len(data), steps * BATCH)  # the samples `steps` steps can reach; both sides see the same
    data64 = Split(data.x[:n].double(), data.y[:n])
    nets = [compact(parent64, m) for m in masks]
    _population(nets, data64, steps, spec)
    worst, biggest, worst_logit, biggest_logit = 0.0, 0.0, 0.0, 0.0
    xb = data64.x[:BATCH]
    for mask, small in zip(masks[:compare], nets):
        full, _ = _masked_alone(parent64, mask, data64, steps, spec, loader=True)
        with torch.no_grad():
            sliced = compact(full, mask).state_dict()  # (a)'s kept tensors as a compacted net's
            for name, d in small.state_dict().items():
                a = sliced[name].double()
                worst = max(worst, float((a - d.double()).abs().max()))
                if d.is_floating_point():  # not BatchNorm's batch counter
                    biggest = max(biggest, float(a.abs().max()))
            full.eval()
            small.eval()
            logits = small(xb)
            worst_logit = max(worst_logit, float((full(xb) - logits).abs().max()))
            biggest_logit = max(biggest_logit, float(logits.abs().max()))
    return {
        "sparsity": sparsity,
        "members": min(compare, len(nets)),
        "population": len(nets),
        "steps": steps,
        "dtype": "float64",
        "max_abs_diff": worst,
        "max_abs_weight": biggest,
        "max_abs_logit_diff": worst_logit,  # eval mode, on one batch
        "equal": worst <= 1e-9 * max(1.0, biggest) and worst_logit <= 1e-9 * max(1.0, biggest_logit),
    }
