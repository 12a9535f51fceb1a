"""The whole protocol, end to end, as a user waits for it: `sparsenas run` (this checkout) against
the previous engine (another checkout's `sparsenas`, in its own virtualenv) and against a plain
PyTorch loop that trains each sub-network alone (`plain_loop.py`), timed as whole processes, side
by side, taking turns for `--rounds` rounds so a change in the machine's load falls on each alike.

Cases (each a command line of `sparsenas run`, and its baseline's):

- `readme`: the README's Fashion-MNIST result, LeNet-300-100, dense/random/random-search at node
  sparsity 0.5-0.95, 5 seeds, 20 epochs (45 trials). Baselines: the previous engine, the plain loop
  of compacted sub-networks.
- `controls8`: the paper's protocol (3 epochs) with `--controls 8` (185 trials). Baseline: the same
  engine one trial at a time (`--population-cap 1`).
- `controls32-0.8`, `controls32-0.95`: 32 random controls, one epoch, one seed. Baseline: each
  masked network alone, batches from a DataLoader (`plain_loop.py --how masked-dataloader`).

Runs skip the report (`--no-report`): its cost is the same whichever engine trained. Times are
medians over rounds; a ratio is baseline / this engine, from the same rounds. Fashion-MNIST is
loaded once before the first round, so runs of this checkout (and the plain loop, which loads
through it) find the decoded-data cache warm, as every run after a user's first does; an engine
from before that cache decodes the files each run.

    python benchmarks/protocol.py --previous /work/prevvenv/bin/sparsenas --rounds 2 --out benchmarks/protocol_cpu.md
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FMNIST = ["--dataset", "fashion-mnist", "--model", "lenet-300-100", "--batch-size", "128", "--schedule", "cosine"]
README = [*FMNIST, "--finders", "dense,random,random-search", "--sparsities", "0.5,0.8,0.9,0.95", "--seeds", "5", "--epochs", "20"]
PAPER = [*FMNIST, "--finders", "dense,random,random-search", "--sparsities", "0.5,0.8,0.9,0.95", "--seeds", "5", "--epochs", "3"]


def controls32(sparsity: str) -> list[str]:
    return [*FMNIST, "--finders", "random", "--controls", "32", "--sparsities", sparsity, "--seeds", "1", "--epochs", "1"]


def cases(previous: str | None) -> dict[str, list[tuple[str, list[str]]]]:
    """Case -> [(label, argv)], this engine first. `{out}` in an argv is a fresh directory per run."""
    me = [sys.executable, "-m", "sparsenas", "run"]
    plain = [sys.executable, str(HERE / "plain_loop.py")]
    tail = ["--no-report", "--quiet", "--out", "{out}"]
    readme = [("this engine", [*me, *README, *tail])]
    if previous:
        readme.append(("previous engine", [previous, "run", *README, *tail]))
    readme.append(("plain loop, compacted", [*plain, *README]))
    out = {
        "readme": readme,
        "controls8": [
            ("this engine", [*me, *PAPER, "--controls", "8", *tail]),
            ("one at a time", [*me, *PAPER, "--controls", "8", "--population-cap", "1", *tail]),
        ],
    }
    for s in ("0.8", "0.95"):
        out[f"controls32-{s}"] = [
            ("this engine", [*me, *controls32(s), *tail]),
            ("masked, DataLoader, alone", [*plain, *controls32(s), "--how", "masked-dataloader"]),
        ]
    return out


def timed(argv: list[str]) -> float:
    """Seconds of one whole process; its output is kept only if it fails."""
    work = Path(tempfile.mkdtemp(prefix="sparsenas-bench-"))
    try:
        argv = [str(work / "run") if a == "{out}" else a for a in argv]
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
        return seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="the protocol end to end: this engine against its baselines")
    ap.add_argument("--previous", help="the previous engine's sparsenas executable (another checkout's virtualenv)")
    ap.add_argument("--cases", default="readme,controls8,controls32-0.8,controls32-0.95")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", help="also write the markdown table here")
    a = ap.parse_args()
    chosen = {k: v for k, v in cases(a.previous).items() if k in a.cases.split(",")}
    times: dict[tuple[str, str], list[float]] = {}
    # the decoded-data cache (sparsenas.data.cache) warm, as after a user's first run
    subprocess.run([sys.executable, "-c", "from sparsenas.data import load_dataset; load_dataset('fashion-mnist')"], check=True)
    for r in range(a.rounds):
        for case, runs in chosen.items():
            # the order turns each round: no command always runs first (or after the heaviest)
            for label, argv in runs[r % len(runs) :] + runs[: r % len(runs)]:
                seconds = timed(argv)
                times.setdefault((case, label), []).append(seconds)
                print(f"round {r + 1} {case:16s} {label:28s} {seconds:8.1f} s", flush=True)
    lines = [
        "| case | engine | median s | runs (s) | ratio: baseline / this engine |",
        "|---|---|---|---|---|",
    ]
    for case, runs in chosen.items():
        mine = statistics.median(times[(case, runs[0][0])])
        for label, _ in runs:
            t = times[(case, label)]
            ratio = "" if label == runs[0][0] else f"{statistics.median(t) / mine:.2f}x"
            lines.append(f"| {case} | {label} | {statistics.median(t):.1f} | {', '.join(f'{x:.1f}' for x in t)} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        commands = "\n".join(f"- {case}, {label}: `{' '.join(argv)}`" for case, runs in chosen.items() for label, argv in runs)
        import os
        import platform

        import torch

        machine = (
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {platform.python_version()}, torch {torch.__version__}, "
            f"{a.rounds} rounds; load average at the end {os.getloadavg()[0]:.2f} (1 min)"
        )
        Path(a.out).write_text(f"{machine}\n\n{table}\n\nCommands ({{out}} is a fresh directory per run):\n\n{commands}\n")


if __name__ == "__main__":
    main()
