"""What each command does, given its parsed flags: thin calls into the protocol, report, export and store."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import SparsenasError, quote


def _spec_from_args(args: argparse.Namespace) -> Any:
    from ..protocol.options import options, parse_value
    from ..protocol.spec import build_spec
    from ..protocol.specfile import load_spec_file

    values: dict[str, Any] = load_spec_file(args.config) if args.config else {}
    for opt in options():
        raw = getattr(args, opt.name)
        if raw is not None:
            values[opt.name] = parse_value(opt, raw)
    return build_spec(values)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the runner's finally blocks, as Ctrl-C does


def cmd_run(args: argparse.Namespace) -> int:
    from ..progress import RunProgress
    from ..protocol import run
    from ..protocol.executors import get_executor

    spec = _spec_from_args(args)
    if args.out is not None and not args.out.strip():
        raise SparsenasError("--out is empty; pass a run directory such as --out runs/demo")
    out = Path(args.out if args.out is not None else f"runs/{spec.dataset}-{spec.model}")
    # `kill` (SIGTERM, what job schedulers send) ends the run like Ctrl-C does: the session is
    # logged and the exit says how to resume, instead of the process vanishing mid-statement
    previous = signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
    shows_epochs = get_executor(spec.executor).epoch_progress  # Ray's workers report whole populations
    with RunProgress(enabled=not args.quiet, epochs=spec.train.epochs if shows_epochs else None) as prog:
        try:
            summary = run(spec, out, on_trial=prog.on_trial, on_epoch=prog.on_epoch)
        except KeyboardInterrupt:
            prog.stop()
            print(f"interrupted: finished trials are stored in {out}; re-run the same command to resume", file=sys.stderr)
            return 130
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    trained = f", {summary.populations} populations, peak memory {summary.peak_memory / 2**20:.0f} MiB" if summary.ran else ""
    print(
        f"{summary.planned} trials planned: {summary.skipped} already stored, {summary.ran} run"
        f" ({summary.diverged} diverged) in {summary.seconds:.1f} s{trained} -> {out}"
    )
    if not args.no_report:
        from ..report import write_report  # here: the report's scipy and matplotlib cost a second at start-up

        paths = write_report(out)
        print(f"report: {paths['html']} , {paths['md']} , {paths['csv']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.verdict:  # the statistics only: no figures (matplotlib), no spec section (finders, torch)
        from ..report import render_verdict_markdown

        print(render_verdict_markdown(Path(args.run_dir), family=args.holm_family))
        return 0
    from ..report import write_report

    paths = write_report(Path(args.run_dir), family=args.holm_family)
    for kind in ("html", "md", "csv"):
        print(paths[kind])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_trial
    from ..report import write_report

    if not 1 <= args.repeats <= 100_000:
        raise SparsenasError(f"--repeats must be from 1 to 100,000, got {quote(args.repeats)}; the default 50 gives a tight CI")
    result = export_trial(args.run_dir, args.trial, args.output, args.data_dir, args.device, repeats=args.repeats)
    print(
        f"exported trial {result.key} -> {result.path} ({result.file_bytes / 1024:.0f} KiB); "
        f"load it with torch.export.load(open({result.path!r}, 'rb')).module()"
    )
    print(result.summary())
    if not args.no_report:
        print(f"report: {write_report(Path(args.run_dir))['html']}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from ..store import Store

    with Store(args.run_dir, create=False) as store:
        keys = [k for k in store.identities() if k == args.trial] or [k for k in store.identities() if k.startswith(args.trial)]
        if not args.trial or len(keys) != 1:
            raise SparsenasError(
                f"{'no' if not keys else len(keys)} trial keys in '{args.run_dir}' match {quote(args.trial)}; "
                "give a whole key from the 'key' column of trials.csv"
            )
        store.forget(keys[0])
    print(f"forgot trial {keys[0]}: re-run the run's own 'sparsenas run' command to train it again")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .catalog import catalog

    print(catalog(), end="")
    return 0


def _ints(flag: str, text: str, low: int, high: int) -> list[int]:
    # checked here, not by argparse's type=: its errors are a usage block, ours are one line
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or min(vals) < low or max(vals) > high:
        raise SparsenasError(f"{flag} must be integers from {low} to {high:,}, comma-separated, got {quote(text)}")
    return vals


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    import torch

    from ..bench import run_bench, to_markdown
    from ..masks import check_sparsity
    from ..protocol.options import options, parse_value
    from ..protocol.spec import build_spec

    try:
        sparsities = [check_sparsity(float(v)) for v in args.sparsities.split(",") if v.strip()]
    except ValueError:
        raise SparsenasError(f"--sparsities must be numbers in [0, 1), got {args.sparsities!r}") from None
    if not sparsities:
        raise SparsenasError("--sparsities is empty; e.g. --sparsities 0.5,0.8,0.95")
    populations = _ints("--populations", args.populations, 1, 4096)
    steps = _ints("--steps", args.steps, 1, 100_000)[0]
    alone = _ints("--alone", args.alone, 1, 4096)[0]
    rounds = _ints("--rounds", args.rounds, 1, 100)[0]
    check_steps = _ints("--check-steps", args.check_steps, 1, 100_000)[0] if args.check_steps is not None else None
    if alone > min(populations):
        raise SparsenasError(f"--alone {alone} is more than the smallest population {min(populations)}; lower --alone")
    # --widths and --threads parsed and checked exactly as `run` does (a spec holding only them)
    given = {o.name: parse_value(o, getattr(args, o.name)) for o in options() if o.name in ("widths", "threads")}
    checked = build_spec({name: v for name, v in given.items() if v is not None})
    if args.device not in ("cpu", "cuda"):
        raise SparsenasError(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SparsenasError("--device cuda asked for, but this torch build sees no CUDA GPU; use --device cpu")
    outs = [Path(o) for o in args.out or []]
    for out in outs:
        if out.suffix not in (".md", ".json") or not out.parent.is_dir():
            raise SparsenasError(f"--out must be a .md or .json file in an existing folder, got '{out}'")
    result = run_bench(
        sparsities,
        populations,
        steps,
        alone,
        args.device,
        model=args.model,
        widths=checked.widths,
        check_steps=check_steps,
        threads=checked.threads,
        rounds=rounds,
    )
    result["command"] = _bench_command(args)
    for out in outs:
        out.write_text(json.dumps(result, indent=1) if out.suffix == ".json" else to_markdown(result))
        print(f"written: {out}")
    return 0


def _bench_command(args: argparse.Namespace) -> str:
    """The command line that repeats this bench, every flag spelled out (defaults too), so a saved
    table says how it was made.

    >>> ns = argparse.Namespace(imports=[], model="resnet20", widths=None, sparsities="0.75", populations="16", steps="30",
    ...                         alone="2", rounds="3", check_steps="3", threads="1", device="cpu", out=["r.md"])
    >>> _bench_command(ns)
    'sparsenas bench --model resnet20 --sparsities 0.75 --populations 16 --steps 30 --alone 2 --rounds 3 --check-steps 3 --threads 1 --device cpu --out r.md'
    """
    words = ["sparsenas", "bench"]
    for imported in args.imports:
        words += ["--import", imported]
    for flag, value in (
        ("--model", args.model),
        ("--widths", args.widths),
        ("--sparsities", args.sparsities),
        ("--populations", args.populations),
        ("--steps", args.steps),
        ("--alone", args.alone),
        ("--rounds", args.rounds),
        ("--check-steps", args.check_steps),
        ("--threads", args.threads),
        ("--device", args.device),
    ):
        if value is not None:
            words += [flag, str(value)]
    for out in args.out or []:
        words += ["--out", out]
    return shlex.join(words)
