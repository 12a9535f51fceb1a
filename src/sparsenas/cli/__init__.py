"""Command line: ``sparsenas run | report | export | forget | list | bench``. Thin: parses, calls the layers.

`parsers.py` declares every command's flags; `commands.py` does what each command asks, through
the protocol, report, export and store layers; this module dispatches and turns every user error
into one line ``error: ...`` on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence

from ..errors import SparsenasError, one_line
from .commands import cmd_bench, cmd_export, cmd_forget, cmd_list, cmd_report, cmd_run
from .parsers import build_parser, command_of

__all__ = ["build_parser", "main"]


def quiet_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``), unless the user chose a policy.

    torch's OpenMP runtime (GNU libgomp) spins a finished thread for a while before it sleeps, waiting
    for the next parallel region. Where other processes keep the cores busy, the spinning threads take
    the cores the working one needs: on 2 cores beside another training run, the default run (one seed,
    10 epochs) trained over 5x longer with torch's two spinning threads than with --threads 1, and
    1.07x as long with them passive; beside three more busy processes, passive took 1.09x
    (benchmarks/startup.md). The runtime reads the variable once, when torch is first loaded, so it is
    set only while torch is not yet imported (and Ray workers this process starts inherit it). The
    thread count is unchanged, and so is every number a run computes (only timings move).
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sparsenas`` console script.

    >>> main(["list"])  # doctest: +ELLIPSIS
    datasets:
    ...
    0
    """
    quiet_openmp()  # before anything imports torch: a plugin, the parser, the command
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        # inside the try: building `run`'s parser imports torch, and Ctrl-C may land there
        from ..plugins import load_plugins

        # the user's code first: a finder registered there declares options that are flags of `run`
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--import", dest="imports", action="append", default=[])
        load_plugins(pre.parse_known_args(argv)[0].imports)
        # only the named command's flags: `run`'s import every finder (and torch), which `--help` and `list` need not
        args = build_parser({command_of(argv) or ""}).parse_args(argv)
        handler = {"run": cmd_run, "report": cmd_report, "list": cmd_list, "bench": cmd_bench, "export": cmd_export, "forget": cmd_forget}[
            args.command
        ]
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
        print("error: out of memory; use a smaller --population-cap, --widths, --batch-size or --limit", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as e:
        # the file system said no mid-run (disk full, permissions changed): finished trials are
        # already committed, so say what failed and how to resume rather than show a traceback
        print(f"error: {one_line(str(e))}; fix the cause and re-run the same command (finished trials are kept)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
