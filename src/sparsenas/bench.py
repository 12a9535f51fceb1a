"""`sparsenas bench`: how fast K sub-networks train four ways, side by side in one process.

On Fashion-MNIST-shaped data with LeNet-300-100, for each node sparsity and population size K:

  (a) what a user writes today: each sub-network alone, the full-size parent with its mask
      multiplied in after every step, batches from a torch DataLoader;
  (b) the same, with batches sliced from in-memory tensors;
  (c) each sub-network alone, compacted to its smaller dense network (sparsenas with K = 1);
  (d) the K compacted sub-networks as one population (stacked weights, batched GEMMs).

Each method trains its sub-networks for the same number of steps on the same minibatches from the
same init; (a) to (c) do not depend on K, so they are timed on a few sub-networks and their rate is
reused for every K. Throughput is sub-network-epochs per second (one epoch = one pass over the
training split). Useful GFLOP/s counts the compacted sub-networks' training FLOPs for every method
(the masked methods do more arithmetic, on zeros): per sample, 2 FLOPs per multiply-add forward, the
same for the weight gradients, and the same again for the input gradients of every layer but the
first (whose input needs none). The peak is torch.mm's best on square matrices, measured in the same
run. Peak memory is the process's peak resident memory during a method (on a GPU: peak allocated),
and how much of it the method added. Finally (d)'s weights are compared with (a)'s.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from .data import Dataset, Split, batches, load_dataset
from .errors import SparsenasError, quote
from .masks import NodeMask, allocate, apply_weight_masks, compact, random_mask, weight_masks
from .models import Parent, build_parent
from .train import Population, TrainSpec, peak_memory, reset_peak_memory, tune_malloc

BATCH = 128
METHODS = {
    "a": "masked, DataLoader",
    "b": "masked, in-memory",
    "c": "compacted, alone",
    "d": "compacted population",
}


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


# -- FLOPs ----------------------------------------------------------------------------------------

def train_flops_per_sample(net: nn.Module) -> float:
    """Training FLOPs per sample of a Linear chain: forward, weight gradients, input gradients of
    every layer but the first (2 FLOPs per multiply-add each).

    >>> train_flops_per_sample(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)))
    84.0
    """
    macs = [m.in_features * m.out_features for m in net.modules() if isinstance(m, nn.Linear)]
    return float(2 * sum(macs) + 2 * sum(macs) + 2 * sum(macs[1:]))


def mm_peak_gflops(device: torch.device, sizes: Sequence[int] = (1024, 2048, 3072), seconds: float = 0.5) -> tuple[float, int]:
    """torch.mm's best GFLOP/s on square fp32 matrices of `sizes`, and the size that gave it."""
    best = (0.0, 0)
    for n in sizes:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        a @ b  # warm-up
        reps, start = 0, _now(device)
        while True:
            a @ b
            reps += 1
            elapsed = _now(device) - start
            if elapsed >= seconds:
                break
        best = max(best, (2 * n**3 * reps / elapsed / 1e9, n))
    return best


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


# -- the four methods -----------------------------------------------------------------------------

def _minibatches(data: Split, loader: bool) -> Any:
    """Minibatches without end, every method in the same order (seed 0): a torch DataLoader over a
    dataset of samples, or slices of the in-memory tensors (`data.batches`)."""
    gen = torch.Generator().manual_seed(0)
    while True:
        if loader:  # what a user writes today: a Dataset of samples, collated per batch
            perm = torch.randperm(len(data), generator=gen)  # the draw `batches` makes, so orders agree
            yield from DataLoader(TensorDataset(data.x.cpu(), data.y.cpu()), batch_size=BATCH, sampler=perm.tolist())
        else:
            yield from batches(data, BATCH, gen)


def _masked_alone(parent: Parent, mask: NodeMask, data: Split, steps: int, spec: TrainSpec, loader: bool) -> tuple[nn.Module, float]:
    """Train the full-size masked parent for `steps` steps; returns it and the seconds it took."""
    masks = weight_masks(parent, mask)
    net = apply_weight_masks(parent, masks)
    device = data.x.device
    masks = {n: m.to(device) for n, m in masks.items()}
    params = dict(net.named_parameters())
    opt = torch.optim.SGD(net.parameters(), lr=spec.lr, momentum=spec.momentum)
    it = _minibatches(data, loader)
    start = _now(device)
    for _ in range(steps):
        xb, yb = next(it)
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for name, m in masks.items():
                params[name].mul_(m)  # keep the pruned weights at zero
    return net, _now(device) - start


def _population(nets: list[Parent], data: Split, steps: int, spec: TrainSpec) -> float:
    """Train `nets` together for `steps` steps (in place); returns the seconds it took."""
    pop = Population(nets, spec)
    it = _minibatches(data, loader=False)
    device = data.x.device
    start = _now(device)
    for _ in range(steps):
        xb, yb = next(it)
        pop.step(xb, yb, spec.lr)
    elapsed = _now(device) - start
    pop.write_back(nets)
    return elapsed


def _measure(device: torch.device, fn: Callable[[], float]) -> tuple[float, float, float]:
    """(seconds, peak MiB, added MiB) of one timed call."""
    before = reset_peak_memory(device) / 2**20  # also returns what earlier methods freed to the kernel
    seconds = fn()
    peak = peak_memory(device) / 2**20
    return seconds, peak, peak - before


# -- the benchmark --------------------------------------------------------------------------------

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
    ks: Sequence[int] = (8, 32, 128),
    steps: int = 100,
    alone: int = 4,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure methods (a)-(d); returns the rows, the mm peak and the equality check.

    >>> r = run_bench((0.9,), (2,), steps=3, alone=1, log=lambda s: None)  # doctest: +SKIP
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
        masks = [random_mask(groups, allocate(groups, s), gen) for _ in range(max(ks))]
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
        for k in ks:
            nets = [compact(parent, m) for m in masks[:k]]
            secs, pk, add = _measure(dev, lambda: _population(nets, data, steps, spec))
            rate = {m: r[0] for m, r in alone_rates.items()} | {"d": k / secs}
            mem = {m: r[1:] for m, r in alone_rates.items()} | {"d": (pk, add)}
            for method in "abcd":
                gf = rate[method] * flops / 1e9
                rows.append(Row(s, k, method, rate[method] * steps / steps_per_epoch, rate[method] / rate["a"],
                                gf, gf / peak, *mem[method]))
        check_masks[s] = masks[: min(max(ks), 8)]
        for r in rows:
            if r.sparsity == s:
                log(f"  s={r.sparsity:g} K={r.k:<4} ({r.method}) {METHODS[r.method]:<21} {r.subnet_epochs_per_s:9.3f} subnet-epochs/s "
                    f"{r.speedup_vs_a:7.1f}x  {r.useful_gflops:6.1f} GFLOP/s ({r.of_mm_peak:5.1%} of mm peak)  "
                    f"peak {r.peak_mib:6.0f} MiB (+{r.added_mib:.0f})")
    # after every timing, so no check's float64 copies are in memory while a method is timed
    checks = [equality_check(parent, m, data, steps, spec, alone, s) for s, m in check_masks.items()]
    for c in checks:
        log(f"  equality s={c['sparsity']:g}: {_check_words(c)}")
    return {"device": str(dev), "data": data_note, "steps": steps, "batch": BATCH, "mm_peak_gflops": peak,
            "mm_peak_size": peak_n, "rows": [asdict(r) for r in rows], "equality": checks, "torch": torch.__version__}


def equality_check(parent: Parent, masks: list[NodeMask], data: Split, steps: int, spec: TrainSpec, compare: int, sparsity: float) -> dict[str, Any]:
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
    return {"sparsity": sparsity, "members": min(compare, len(nets)),
            "population": len(nets), "steps": steps, "dtype": "float64", "max_abs_diff": worst,
            "max_abs_weight": biggest, "equal": worst <= 1e-9 * max(1.0, biggest)}


def _check_words(c: dict[str, Any]) -> str:
    verdict = "same weights" if c["equal"] else "DIFFERENT WEIGHTS"
    return (f"(d) in a population of {c['population']} vs (a), {c['members']} sub-networks, {c['steps']} steps in "
            f"{c['dtype']}: max |w_d - w_a| = {c['max_abs_diff']:.1e} (largest |w| {c['max_abs_weight']:.2f}): {verdict}")


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark table as markdown (what README and benchmarks/ show)."""
    lines = [
        f"device {result['device']}, torch {result['torch']}; {result['data']}; {result['steps']} steps of batch "
        f"{result['batch']}; torch.mm peak {result['mm_peak_gflops']:.0f} GFLOP/s ({result['mm_peak_size']}^2)",
        "",
        "| node sparsity | K | method | subnet-epochs/s | vs (a) | useful GFLOP/s | of mm peak | peak MiB (added) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['sparsity']:g} | {r['k']} | ({r['method']}) {METHODS[r['method']]} | {r['subnet_epochs_per_s']:.3f} | "
            f"{r['speedup_vs_a']:.1f}x | {r['useful_gflops']:.1f} | {r['of_mm_peak']:.0%} | {r['peak_mib']:.0f} (+{r['added_mib']:.0f}) |"
        )
    lines.append("")
    for c in result["equality"]:
        lines.append(f"- node sparsity {c['sparsity']:g}: {_check_words(c)}")
    return "\n".join(lines) + "\n"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time K sub-networks trained four ways (masked+DataLoader ... population)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--sparsities", default="0.5,0.8,0.95", metavar="S,S,...", help="node sparsities (default: 0.5,0.8,0.95)")
    p.add_argument("--populations", default="8,32,128", metavar="K,K,...", help="population sizes K, 1 to 4,096 (default: 8,32,128)")
    p.add_argument("--steps", default="100", metavar="N", help="training steps per sub-network and method, 1 to 100,000 (default: 100)")
    p.add_argument("--alone", default="4", metavar="N", help="sub-networks timed for each one-at-a-time method (default: 4)")
    p.add_argument("--device", default="cpu", metavar="{cpu,cuda}", help="cpu or cuda (default: cpu)")
    p.add_argument("--out", metavar="FILE", help="also write the table (.md) or all numbers (.json) to FILE")


def _ints(flag: str, text: str, low: int, high: int) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or min(vals) < low or max(vals) > high:
        raise SparsenasError(f"{flag} must be integers from {low} to {high:,}, comma-separated, got {quote(text)}")
    return vals


def cmd_bench(args: argparse.Namespace) -> int:
    from .masks import check_sparsity

    try:
        sparsities = [check_sparsity(float(v)) for v in args.sparsities.split(",") if v.strip()]
    except ValueError:
        raise SparsenasError(f"--sparsities must be numbers in [0, 1), got {args.sparsities!r}") from None
    if not sparsities:
        raise SparsenasError("--sparsities is empty; e.g. --sparsities 0.5,0.8,0.95")
    ks = _ints("--populations", args.populations, 1, 4096)
    steps = _ints("--steps", args.steps, 1, 100_000)[0]
    alone = _ints("--alone", args.alone, 1, 4096)[0]
    if alone > min(ks):
        raise SparsenasError(f"--alone {alone} is more than the smallest population {min(ks)}; lower --alone")
    if args.device not in ("cpu", "cuda"):
        raise SparsenasError(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SparsenasError("--device cuda asked for, but this torch build sees no CUDA GPU; use --device cpu")
    out = Path(args.out) if args.out else None
    if out is not None and (out.suffix not in (".md", ".json") or not out.parent.is_dir()):
        raise SparsenasError(f"--out must be a .md or .json file in an existing folder, got '{out}'")
    result = run_bench(sparsities, ks, steps, alone, args.device)
    if out is not None:
        out.write_text(json.dumps(result, indent=1) if out.suffix == ".json" else to_markdown(result))
        print(f"written: {out}")
    return 0
