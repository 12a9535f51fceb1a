"""Command line: ``sparsenas run | report | list | bench | export``. Thin: parses, calls protocol and report.

Every user error ends as one line ``error: ...`` on stderr and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from .errors import SparsenasError, one_line, quote


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    from .protocol.options import options

    p = sub.add_parser(
        "run",
        help="run (or resume) a sweep of finders, sparsities and seeds and write its report",
        description="Run every trial of a spec into a run directory (resuming what is stored), then write its report.",
    )
    p.add_argument("--config", metavar="FILE", help="spec file (.toml or .yaml) with the same keys as these flags; flags override it")
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/<dataset>-<model>)")
    p.add_argument("--no-report", action="store_true", help="do not write the report after the run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    for opt in options():
        p.add_argument(opt.flag, dest=opt.name, default=None, metavar=opt.metavar, help=opt.full_help)


def _spec_from_args(args: argparse.Namespace) -> Any:
    from .protocol.options import options, parse_value
    from .protocol.spec import build_spec
    from .protocol.specfile import load_spec_file

    values: dict[str, Any] = load_spec_file(args.config) if args.config else {}
    for opt in options():
        raw = getattr(args, opt.name)
        if raw is not None:
            values[opt.name] = parse_value(opt, raw)
    return build_spec(values)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the runner's finally blocks, as Ctrl-C does


def cmd_run(args: argparse.Namespace) -> int:
    from .protocol import run
    from .report import write_report
    from .progress import RunProgress

    spec = _spec_from_args(args)
    if args.out is not None and not args.out.strip():
        raise SparsenasError("--out is empty; pass a run directory such as --out runs/demo")
    out = Path(args.out if args.out is not None else f"runs/{spec.dataset}-{spec.model}")
    # `kill` (SIGTERM, what job schedulers send) ends the run like Ctrl-C does: the session is
    # logged and the exit says how to resume, instead of the process vanishing mid-statement
    previous = signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
    with RunProgress(enabled=not args.quiet, epochs=None if spec.executor == "ray" else spec.train.epochs) as prog:
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
        paths = write_report(out)
        print(f"report: {paths['html']} , {paths['md']} , {paths['csv']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import render_verdict_markdown, write_report

    if args.verdict:
        print(render_verdict_markdown(Path(args.run_dir), family=args.holm_family))
        return 0
    paths = write_report(Path(args.run_dir), family=args.holm_family)
    for kind in ("html", "md", "csv"):
        print(paths[kind])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_trial
    from .report import write_report

    if not 1 <= args.repeats <= 100_000:
        raise SparsenasError(f"--repeats must be from 1 to 100,000, got {quote(args.repeats)}; the default 50 gives a tight CI")
    result = export_trial(args.run_dir, args.trial, args.output, args.data_dir, args.device, repeats=args.repeats)
    print(f"exported trial {result.key} -> {result.path} ({result.file_bytes / 1024:.0f} KiB); "
          f"load it with torch.export.load(open({result.path!r}, 'rb')).module()")
    print(result.summary())
    if not args.no_report:
        print(f"report: {write_report(Path(args.run_dir))['html']}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from .store import Store

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
    from .data import DATASETS
    from .finders import FINDERS
    from .models import MODELS

    for title, reg in (("datasets", DATASETS), ("models", MODELS)):
        print(f"{title}:")
        for e in reg.entries():
            print(f"  {e.name:<16} {e.help}")
    print("finders (spaces: the masks a finder searches; --space picks node or weight):")
    for e in FINDERS.entries():
        print(f"  {e.name:<16} {'+'.join(e.obj.spaces):<12} {e.help}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sparsenas")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsenas",
        description="Sparse sub-network search and its fair evaluation against random sub-networks.",
    )
    parser.add_argument("--version", action="version", version=f"sparsenas {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    rp = sub.add_parser("report", help="write report.html, report.md and trials.csv for a run directory")
    rp.add_argument("run_dir", metavar="RUN_DIR")
    rp.add_argument("--verdict", action="store_true", help="print only the verdict table (markdown) to stdout; write nothing")
    rp.add_argument(
        "--holm-family", choices=("finder", "table"), default="finder",
        help="the Holm family verdicts follow: finder (each finder and metric across its sparsities) or table "
        "(every row of the verdict table at once, for reading across finders); both adjusted p's are shown (default: finder)",
    )
    sub.add_parser("list", help="list the registered datasets, models and finders")
    ep = sub.add_parser(
        "export", help="write a trial's trained sub-network as a standalone torch.export program, checked and timed",
        description="Compact a stored trial's trained sub-network, save it with torch.export (loads with plain "
        "PyTorch: torch.export.load(path).module()), check its outputs against the masked parent on test inputs, "
        "time masked parent, compacted module and program at batch 1 and 128, and add the result to the run's report.",
    )
    ep.add_argument("run_dir", metavar="RUN_DIR")
    ep.add_argument("--trial", required=True, metavar="KEY", help="the trial's key (the key column of trials.csv; a unique prefix is enough)")
    ep.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write, e.g. model.pt2")
    ep.add_argument("--data-dir", default=None, metavar="DIR", help="the run's --data-dir, if it used one")
    ep.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="where to check and time (default: cpu)")
    ep.add_argument("--repeats", type=int, default=50, metavar="N", help="timed repeats at batch 128 (4x at batch 1; default 50)")
    ep.add_argument("--no-report", action="store_true", help="do not rewrite the run's report afterwards")
    fp = sub.add_parser("forget", help="delete one stored trial (a damaged one), so the run's own command trains it again")
    fp.add_argument("run_dir", metavar="RUN_DIR")
    fp.add_argument("--trial", required=True, metavar="KEY", help="the trial's key (a unique prefix is enough)")
    _add_bench_parser(sub)
    for command in sub.choices.values():  # every command may need the user's registrations
        command.add_argument(
            "--import", dest="imports", action="append", default=[], metavar="FILE.py|MODULE",
            help="import your own models, datasets or finders first (a .py file or a module name; repeatable)",
        )
    return parser


def _add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time K sub-networks trained four ways (masked+DataLoader ... population)",
                       description="`sparsenas bench`: how fast K sub-networks train four ways, side by side in one process.")
    p.add_argument("--sparsities", default="0.5,0.8,0.95", metavar="S,S,...", help="node sparsities (default: 0.5,0.8,0.95)")
    p.add_argument("--populations", default="8,32,128", metavar="K,K,...", help="population sizes K, 1 to 4,096 (default: 8,32,128)")
    p.add_argument("--steps", default="100", metavar="N", help="training steps per sub-network and method, 1 to 100,000 (default: 100)")
    p.add_argument("--alone", default="4", metavar="N", help="sub-networks timed for each one-at-a-time method (default: 4)")
    p.add_argument("--device", default="cpu", metavar="{cpu,cuda}", help="cpu or cuda (default: cpu)")
    p.add_argument("--out", metavar="FILE", help="also write the table (.md) or all numbers (.json) to FILE")


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

    from .bench import run_bench, to_markdown
    from .masks import check_sparsity

    try:
        sparsities = [check_sparsity(float(v)) for v in args.sparsities.split(",") if v.strip()]
    except ValueError:
        raise SparsenasError(f"--sparsities must be numbers in [0, 1), got {args.sparsities!r}") from None
    if not sparsities:
        raise SparsenasError("--sparsities is empty; e.g. --sparsities 0.5,0.8,0.95")
    populations = _ints("--populations", args.populations, 1, 4096)
    steps = _ints("--steps", args.steps, 1, 100_000)[0]
    alone = _ints("--alone", args.alone, 1, 4096)[0]
    if alone > min(populations):
        raise SparsenasError(f"--alone {alone} is more than the smallest population {min(populations)}; lower --alone")
    if args.device not in ("cpu", "cuda"):
        raise SparsenasError(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SparsenasError("--device cuda asked for, but this torch build sees no CUDA GPU; use --device cpu")
    out = Path(args.out) if args.out else None
    if out is not None and (out.suffix not in (".md", ".json") or not out.parent.is_dir()):
        raise SparsenasError(f"--out must be a .md or .json file in an existing folder, got '{out}'")
    result = run_bench(sparsities, populations, steps, alone, args.device)
    if out is not None:
        out.write_text(json.dumps(result, indent=1) if out.suffix == ".json" else to_markdown(result))
        print(f"written: {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sparsenas`` console script.

    >>> main(["list"])  # doctest: +ELLIPSIS
    datasets:
    ...
    0
    """
    try:
        # inside the try: building the parser imports torch, and Ctrl-C may land there
        from .plugins import load_plugins

        # the user's code first: a finder registered there declares options that are flags of `run`
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--import", dest="imports", action="append", default=[])
        load_plugins(pre.parse_known_args(argv)[0].imports)
        args = build_parser().parse_args(argv)
        handler = {"run": cmd_run, "report": cmd_report, "list": cmd_list, "bench": cmd_bench, "export": cmd_export,
                   "forget": cmd_forget}[args.command]
        code = handler(args)
        sys.stdout.flush()  # here, not at exit: a reader that went away is answered below
        return code
    except SparsenasError as e:
        print(f"error: {e}", file=sys.stderr)  # one line: SparsenasError folds and cuts its message
        return 2
    except BrokenPipeError:
        # the reader went away (`sparsenas report DIR --verdict | head`): not an error of ours; point
        # stdout at /dev/null so the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (MemoryError, RuntimeError) as e:
        # torch reports allocation failures as RuntimeError; any other RuntimeError is a bug to show
        if isinstance(e, RuntimeError) and "out of memory" not in str(e) and "can't allocate memory" not in str(e):
            raise
        print("error: out of memory; use a smaller --population, --widths, --batch-size or --limit", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as e:
        # the file system said no mid-run (disk full, permissions changed): finished trials are
        # already committed, so say what failed and how to resume rather than show a traceback
        print(f"error: {one_line(str(e))}; fix the cause and re-run the same command (finished trials are kept)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
