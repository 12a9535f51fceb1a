"""Issue 16, measured side by side: how fast `sparsenas --help` and `sparsenas list` start, and how the
default run holds up beside busy processes.

    python benchmarks/startup.py [--runs 7] [--busy 3] [--rounds 1] [--out benchmarks/startup.md]

Start-up: wall time of each command line in a fresh interpreter, `--runs` times, median; beside them
the interpreter alone, `import torch` alone, and what each command cost before issue 16 (the full
parser, whose `run` flags import every finder and torch; `list` rendered from the live registries,
as it still is when no kept copy exists).

Busy machine: `--busy` processes spin (`while True: pass`) while the embedded default run, one seed,
trains three ways in turn (`--rounds` times): with `--threads 1`; with the default threads through
the entry point (which sets OMP_WAIT_POLICY=PASSIVE before torch loads); and with the default threads
as before (torch imported first, so OpenMP's threads spin while they wait). The number read is the
run's own training time ("... run in X s"). Other processes on the machine change absolute numbers;
the ratios within one invocation are what to read.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

PY = sys.executable
CLI = [PY, "-m", "sparsenas"]
# the entry point as it was before issue 16: torch already imported when main() starts
BEFORE = [PY, "-c", "import sys, torch; from sparsenas.cli import main; sys.exit(main(sys.argv[1:]))"]
# what `--help` and `list` did before: build every command's flags (importing every finder and torch); list
# from the live registries (as `list` still does the first time, or beside a plugin that registers)
FULL_PARSER = [PY, "-c", "from sparsenas.cli.parsers import build_parser; build_parser().format_help()"]
LIVE_LIST = [
    PY,
    "-c",
    "from sparsenas.cli.parsers import build_parser; from sparsenas.cli.catalog import render; "
    "build_parser().parse_args(['list']); print(render(), end='')",
]
RUN = ["run", "--seeds", "1", "--quiet", "--no-report"]  # the embedded default run, one seed (seed 0)


def _wall(cmd: list[str], env: dict[str, str], cwd: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {r.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t0


def startup(runs: int) -> list[tuple[str, float]]:
    """(what, median wall seconds) of each start-up case."""
    env = {k: v for k, v in os.environ.items()}
    # an empty folder to run in: the current one may hold files named like modules torch imports
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as cwd:
        warm = env | {"XDG_CACHE_HOME": cache}
        subprocess.run([*CLI, "list"], check=True, capture_output=True, env=warm)  # keeps the list
        cases = [
            ("python -c pass (the interpreter alone)", [PY, "-c", "pass"], env),
            ("python -c 'import torch'", [PY, "-c", "import torch"], env),
            ("sparsenas --help", [*CLI, "--help"], env),
            ("sparsenas --help, before (full parser)", FULL_PARSER, env),
            ("sparsenas list (kept list)", [*CLI, "list"], warm),
            ("sparsenas list, before (full parser, live registries)", LIVE_LIST, env),
        ]
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(runs):  # in turn, so a slow spell of the machine hits every case alike
            for name, cmd, e in cases:
                times[name].append(_wall(cmd, e, cwd))
    return [(name, statistics.median(ts)) for name, ts in times.items()]


def _trained_seconds(cmd: list[str], env: dict[str, str], limit: float) -> float | None:
    """The run's own training seconds, or None when it ran past `limit` wall seconds (then it is stopped)."""
    with tempfile.TemporaryDirectory() as out:
        try:
            r = subprocess.run([*cmd, "--out", out], capture_output=True, text=True, env=env, cwd=out, timeout=limit)
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            return None
    m = re.search(r" run \(\d+ diverged\) in ([0-9.]+) s", r.stdout)
    if m is None:
        raise RuntimeError(f"no training time in the run's output: {r.stdout!r} {r.stderr!r}")
    return float(m.group(1))


def busy_machine(busy: int, rounds: int, epochs: int, stop: float, before: bool) -> dict[str, list[float | None]]:
    """Training seconds of the default run, three ways, beside `busy` spinning processes; a run that
    takes `stop` times the wall time of `--threads 1` is stopped there (None)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    run = [*RUN, "--epochs", str(epochs)]
    ways = {
        "--threads 1": [*CLI, *run, "--threads", "1"],
        "default threads (PASSIVE, set by the entry point)": [*CLI, *run],
        "default threads, before (OpenMP spins)": [*BEFORE, *run],
    }
    if not before:
        del ways["default threads, before (OpenMP spins)"]
    seconds: dict[str, list[float | None]] = {w: [] for w in ways}
    spinners = [subprocess.Popen([PY, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        for _ in range(rounds):
            limit = 600.0
            for way, cmd in ways.items():
                t0 = time.perf_counter()
                seconds[way].append(_trained_seconds(cmd, env, limit))
                if way == "--threads 1":
                    limit = stop * (time.perf_counter() - t0)
    finally:
        for p in spinners:  # our own spinners, by their own handles
            p.kill()
            p.wait()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="start-up timings per case (median; default 7)")
    ap.add_argument("--busy", type=int, default=3, help="spinning processes beside the run (default 3; 0: none)")
    ap.add_argument("--rounds", type=int, default=1, help="turns of the three runs (default 1)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the default run (its own default is 30; default 10, to stay short)")
    ap.add_argument("--stop", type=float, default=5.0, help="stop a run at this many times --threads 1's wall time (default 5)")
    ap.add_argument("--no-before", action="store_true", help="leave out the run as before (spinning), the slow one")
    ap.add_argument("--no-run", action="store_true", help="start-up only")
    ap.add_argument("--no-startup", action="store_true", help="the busy-machine runs only")
    ap.add_argument("--out", type=Path, help="also write the output to this markdown file")
    args = ap.parse_args()
    lines = [
        f"Command: `python benchmarks/startup.py {' '.join(sys.argv[1:])}`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average before: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "",
    ]
    if not args.no_startup:
        med = dict(startup(args.runs))
        lines += [f"## Start-up (median wall seconds of {args.runs} runs each, in turn)", "", "| command | seconds |", "|---|---|"]
        lines += [f"| {name} | {s:.2f} |" for name, s in med.items()]
        lines += [
            "",
            f"`--help`: {med['sparsenas --help, before (full parser)'] / med['sparsenas --help']:.1f}x faster than before; "
            f"`list`: {med['sparsenas list, before (full parser, live registries)'] / med['sparsenas list (kept list)']:.1f}x faster than before.",
            "",
        ]
    if not args.no_run:
        seconds = busy_machine(args.busy, args.rounds, args.epochs, args.stop, not args.no_before)
        one = statistics.median(t for t in seconds["--threads 1"] if t is not None)
        lines += [
            f"## Default run, one seed, {args.epochs} epochs, beside {args.busy} spinning processes ({args.rounds} round(s), in turn)",
            "",
            f"Training seconds as the run reports them; 'stopped': still running at {args.stop:g}x the wall time of --threads 1.",
            "",
            "| threads | training seconds | vs --threads 1 (median) |",
            "|---|---|---|",
        ]
        for way, ts in seconds.items():
            done = [t for t in ts if t is not None]
            ratio = f"{statistics.median(done) / one:.2f}x" if len(done) == len(ts) else f"> {args.stop:g}x (wall)"
            lines.append(f"| {way} | {', '.join('stopped' if t is None else f'{t:.1f}' for t in ts)} | {ratio} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
