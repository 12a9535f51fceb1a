"""Every command's flags: argparse declarations only (what each command does is in `commands.py`).

The `run` flags come from the declared options (`protocol.options`), so a finder's option, a user
finder's included, is a flag without an edit here. Those declarations live in the finders' modules,
which import torch (seconds on a busy machine), so `build_parser` declares `run`'s and `bench`'s
flags only for the command being run: ``sparsenas --help`` and ``sparsenas list`` import no torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence

# every command and its line in `sparsenas --help`, in the order that lists them
COMMANDS = {
    "run": "run (or resume) a sweep of finders, sparsities and seeds and write its report",
    "report": "write report.html, report.md and trials.csv for a run directory",
    "list": "list the registered datasets, models and finders",
    "export": "write a trial's trained sub-network as a standalone torch.export program, checked and timed",
    "forget": "delete one stored trial (a damaged one), so the run's own command trains it again",
    "bench": "time K sub-networks trained four ways (masked+DataLoader ... population)",
}
# the commands whose flags come from the registered finders: declared only when asked for
FROM_REGISTRIES = frozenset({"run", "bench"})


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with `commands`, `run` and `bench` declare their flags only if named.

    A command left out keeps its name and help line, which is all that ``sparsenas --help`` shows;
    `main` names the one command it runs, so no other command's imports are paid for.

    >>> build_parser(()).parse_args(["list"]).command
    'list'
    >>> build_parser(["run"]).parse_args(["run", "--epochs", "3"]).epochs
    '3'
    """
    parser = argparse.ArgumentParser(
        prog="sparsenas",
        description="Sparse sub-network search and its fair evaluation against random sub-networks.",
    )
    parser.add_argument("--version", action="version", version=f"sparsenas {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=_DESCRIPTIONS.get(name))
        if name in _FLAGS and (commands is None or name not in FROM_REGISTRIES or name in commands):
            _FLAGS[name](p)
        # every command may need the user's registrations
        p.add_argument(
            "--import",
            dest="imports",
            action="append",
            default=[],
            metavar="FILE.py|MODULE",
            help="import your own models, datasets or finders first (a .py file or a module name; repeatable)",
        )
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command `argv` names: its first word that is not a flag (before it may stand only
    ``-h``, ``--help`` and ``--version``, which take no value).

    >>> command_of(["--help"]), command_of(["run", "--seeds", "2"])
    (None, 'run')
    """
    return next((a for a in argv if not a.startswith("-")), None)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sparsenas")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


_DESCRIPTIONS = {
    "run": "Run every trial of a spec into a run directory (resuming what is stored), then write its report.",
    "export": "Compact a stored trial's trained sub-network, save it with torch.export (loads with plain "
    "PyTorch: torch.export.load(path).module()), check its outputs against the masked parent on test inputs, "
    "time masked parent, compacted module and program at batch 1 and 128, and add the result to the run's report.",
    "bench": "`sparsenas bench`: how fast K sub-networks train four ways, side by side in one process.",
}


def _run_flags(p: argparse.ArgumentParser) -> None:
    from ..protocol.options import options

    p.add_argument("--config", metavar="FILE", help="spec file (.toml or .yaml) with the same keys as these flags; flags override it")
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/<dataset>-<model>)")
    p.add_argument("--no-report", action="store_true", help="do not write the report after the run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    for opt in options():
        p.add_argument(*opt.flags, dest=opt.name, default=None, metavar=opt.metavar, help=opt.full_help)


def _report_flags(rp: argparse.ArgumentParser) -> None:
    rp.add_argument("run_dir", metavar="RUN_DIR")
    rp.add_argument(
        "--verdict",
        action="store_true",
        help="print only the verdict table (markdown, under a line naming its control) to stdout; write nothing",
    )
    rp.add_argument(
        "--holm-family",
        choices=("finder", "table"),
        default="finder",
        help="the Holm family verdicts follow: finder (each finder and metric across its sparsities) or table "
        "(every row of the verdict table at once, for reading across finders); both adjusted p's are shown (default: finder)",
    )


def _export_flags(ep: argparse.ArgumentParser) -> None:
    ep.add_argument("run_dir", metavar="RUN_DIR")
    ep.add_argument(
        "--trial", required=True, metavar="KEY", help="the trial's key (the key column of trials.csv; a unique prefix is enough)"
    )
    ep.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write, e.g. model.pt2")
    ep.add_argument("--data-dir", default=None, metavar="DIR", help="the run's --data-dir, if it used one")
    ep.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="where to check and time (default: cpu)")
    ep.add_argument("--repeats", type=int, default=50, metavar="N", help="timed repeats at batch 128 (4x at batch 1; default 50)")
    ep.add_argument("--no-report", action="store_true", help="do not rewrite the run's report afterwards")


def _forget_flags(fp: argparse.ArgumentParser) -> None:
    fp.add_argument("run_dir", metavar="RUN_DIR")
    fp.add_argument("--trial", required=True, metavar="KEY", help="the trial's key (a unique prefix is enough)")


def _bench_flags(p: argparse.ArgumentParser) -> None:
    from ..protocol.options import options

    widths = next(o for o in options() if o.name == "widths")  # what --widths means for run, it means here
    p.add_argument("--model", default="lenet-300-100", metavar="NAME", help="the parent, any registered model (default: lenet-300-100)")
    p.add_argument("--widths", default=None, metavar=widths.metavar, help=widths.full_help)
    p.add_argument("--sparsities", default="0.5,0.8,0.95", metavar="S,S,...", help="node sparsities (default: 0.5,0.8,0.95)")
    p.add_argument("--populations", default="8,32,128", metavar="K,K,...", help="population sizes K, 1 to 4,096 (default: 8,32,128)")
    p.add_argument("--steps", default="100", metavar="N", help="training steps per sub-network and method, 1 to 100,000 (default: 100)")
    p.add_argument("--alone", default="4", metavar="N", help="sub-networks timed for each one-at-a-time method (default: 4)")
    p.add_argument(
        "--rounds",
        default="1",
        metavar="N",
        help="time the methods in turn N times, 1 to 100 (a shared machine's load then hits each alike; default: 1)",
    )
    p.add_argument(
        "--check-steps",
        default=None,
        metavar="N",
        help="steps of the float64 check of (d) against (a), 1 to 100,000 (default: --steps; fewer for a large parent)",
    )
    p.add_argument(
        "--threads",
        default=None,
        metavar="N",
        help="torch threads for every method, 1 to 1,024 (default: torch's own; beside other busy processes 1 holds up best)",
    )
    p.add_argument("--device", default="cpu", metavar="{cpu,cuda}", help="cpu or cuda (default: cpu)")
    p.add_argument(
        "--out",
        action="append",
        metavar="FILE",
        help="also write the table (.md) or all numbers (.json) to FILE; repeat for both from one run",
    )


# each command's own flags (`list` has none: only --import, which every command takes)
_FLAGS = {"run": _run_flags, "report": _report_flags, "export": _export_flags, "forget": _forget_flags, "bench": _bench_flags}
