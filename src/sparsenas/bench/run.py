"""The benchmark itself: every method on every sparsity and population size, then (d) checked
against (a) in float64. `run_bench` is the entry point `sparsenas bench` calls."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
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


def bench_data(device: torch.device) -> tuple[Split, str]:
    """Fashion-MNIST's training split if it is installed, else random data of the same shape."""
    try:
        ds: Dataset = load_dataset("fashion-mnist")
        return ds.train.to(device), f"Fashion-MNIST train split ({len(ds.train)} samples)"
    except SparsenasError:
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(55000, 1, 28, 28, generator=g), torch.randint(0, 10, (55000,), generator=g)
        return Split(x, y).to(device), "random data shaped like Fashion-MNIST (55000 x 1x28x28; the dataset is not installed)"


def run_bench(
    sparsities: Sequence[float] = (0.5, 0.8, 0.95),
    populations: Sequence[int] = (8, 32, 128),
    steps: int = 100,
    alone: int = 4,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure methods (a)-(d); returns the rows, the mm peak and the equality check.

    For each node sparsity in `sparsities` and population size K in `populations`: (a)-(c) are timed
    on `alone` sub-networks (at most the smallest K), (d) on K, each for `steps` steps on `device`
    ("cpu" or "cuda"). `log` gets the progress lines. The result is plain JSON-able data:
    `to_markdown` renders it, `sparsenas bench --out FILE.json` writes it.

    Skipped as a doctest (seconds: the mm peak alone takes 1.5 s); tests/test_bench.py runs it.

    >>> r = run_bench((0.9,), (2,), steps=3, alone=1, log=lambda s: None)  # doctest: +SKIP
    >>> [row["method"] for row in r["rows"]], r["equality"][0]["equal"]  # doctest: +SKIP
    (['a', 'b', 'c', 'd'], True)
    """
    dev = torch.device(device)
    tune_malloc()
    torch.manual_seed(0)
    data, data_note = bench_data(dev)
    spec = TrainSpec(lr=0.05, momentum=0.9)
    steps_per_epoch = math.ceil(len(data) / BATCH)
    peak, peak_n = mm_peak_gflops(dev)
    log(f"data: {data_note}; {steps} steps of batch {BATCH} per sub-network; device {dev}")
    log(f"torch.mm peak: {peak:.0f} GFLOP/s ({peak_n}x{peak_n} fp32)")
    parent = build_parent("lenet-300-100", (1, 28, 28), 10, seed=0).to(dev)
    groups = parent.node_groups()
    rows: list[Row] = []
    check_masks: dict[float, list[NodeMask]] = {}
    for s in sparsities:
        gen = torch.Generator().manual_seed(0)
        masks = [random_mask(groups, allocate(groups, s), gen) for _ in range(max(populations))]
        flops = train_flops_per_sample(compact(parent, masks[0])) * BATCH * steps  # per sub-network
        alone_rates: dict[str, tuple[float, float, float]] = {}
        for method in ("a", "b", "c"):
            total, peak_mib, added = 0.0, 0.0, 0.0
            for i in range(alone):
                if method == "c":
                    net = compact(parent, masks[i])
                    secs, pk, add = _measure(dev, lambda: _population([net], data, steps, spec))
                else:
                    loader = method == "a"
                    secs, pk, add = _measure(dev, lambda: _masked_alone(parent, masks[i], data, steps, spec, loader)[1])
                total += secs
                peak_mib, added = max(peak_mib, pk), max(added, add)
            alone_rates[method] = (alone / total, peak_mib, added)  # sub-networks per second
        for k in populations:
            nets = [compact(parent, m) for m in masks[:k]]
            secs, pk, add = _measure(dev, lambda: _population(nets, data, steps, spec))
            rate = {m: r[0] for m, r in alone_rates.items()} | {"d": k / secs}
            mem = {m: r[1:] for m, r in alone_rates.items()} | {"d": (pk, add)}
            for method in "abcd":
                gf = rate[method] * flops / 1e9
                rows.append(
                    Row(s, k, method, rate[method] * steps / steps_per_epoch, rate[method] / rate["a"], gf, gf / peak, *mem[method])
                )
        check_masks[s] = masks[: min(max(populations), 8)]
        for r in rows:
            if r.sparsity == s:
                log(
                    f"  s={r.sparsity:g} K={r.k:<4} ({r.method}) {METHODS[r.method]:<21} {r.subnet_epochs_per_s:9.3f} subnet-epochs/s "
                    f"{r.speedup_vs_a:7.1f}x  {r.useful_gflops:6.1f} GFLOP/s ({r.of_mm_peak:5.1%} of mm peak)  "
                    f"peak {r.peak_mib:6.0f} MiB (+{r.added_mib:.0f})"
                )
    # after every timing, so no check's float64 copies are in memory while a method is timed
    checks = [equality_check(parent, m, data, steps, spec, alone, s) for s, m in check_masks.items()]
    for c in checks:
        log(f"  equality s={c['sparsity']:g}: {check_words(c)}")
    return {
        "device": str(dev),
        "data": data_note,
        "steps": steps,
        "batch": BATCH,
        "mm_peak_gflops": peak,
        "mm_peak_size": peak_n,
        "rows": [asdict(r) for r in rows],
        "equality": checks,
        "torch": torch.__version__,
    }


def equality_check(
    parent: Parent, masks: list[NodeMask], data: Split, steps: int, spec: TrainSpec, compare: int, sparsity: float
) -> dict[str, Any]:
    """Train (a) alone and (d) as one population of len(masks) in float64, same init and batches, for
    `steps` steps; compare the first `compare` members' kept weights.

    float64, because fp32 trajectories of the same network separate chaotically: measured here, the
    masked and the compacted LeNet-300-100 at node sparsity 0.5 agree to 3e-7 after 50 steps and
    2e-5 after 100, with no difference in the arithmetic they mean. In float64 that noise is ~1e-13,
    so any real difference (a wrong slice, a leaked gradient) shows far above it.
    """
    parent64 = copy.deepcopy(parent).double()
    n = min(len(data), steps * BATCH)  # the samples `steps` steps can reach; both sides see the same
    data64 = Split(data.x[:n].double(), data.y[:n])
    nets = [compact(parent64, m) for m in masks]
    _population(nets, data64, steps, spec)
    worst, biggest = 0.0, 0.0
    for mask, small in zip(masks[:compare], nets):
        full, _ = _masked_alone(parent64, mask, data64, steps, spec, loader=True)
        with torch.no_grad():
            sliced = compact(full, mask)  # (a)'s kept weights as a compacted net
            for (_, a), (_, d) in zip(sliced.named_parameters(), small.named_parameters()):
                worst = max(worst, float((a - d).abs().max()))
                biggest = max(biggest, float(a.abs().max()))
    return {
        "sparsity": sparsity,
        "members": min(compare, len(nets)),
        "population": len(nets),
        "steps": steps,
        "dtype": "float64",
        "max_abs_diff": worst,
        "max_abs_weight": biggest,
        "equal": worst <= 1e-9 * max(1.0, biggest),
    }
