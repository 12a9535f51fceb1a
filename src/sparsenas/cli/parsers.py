"""Every command's flags: argparse declarations only (what each command does is in `commands.py`).

The `run` flags come from the declared options (`protocol.options`), so a finder's option, a user
finder's included, is a flag without an edit here.
"""

from __future__ import annotations

import argparse


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    from ..protocol.options import options

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
        p.add_argument(*opt.flags, dest=opt.name, default=None, metavar=opt.metavar, help=opt.full_help)


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
        "--holm-family",
        choices=("finder", "table"),
        default="finder",
        help="the Holm family verdicts follow: finder (each finder and metric across its sparsities) or table "
        "(every row of the verdict table at once, for reading across finders); both adjusted p's are shown (default: finder)",
    )
    sub.add_parser("list", help="list the registered datasets, models and finders")
    ep = sub.add_parser(
        "export",
        help="write a trial's trained sub-network as a standalone torch.export program, checked and timed",
        description="Compact a stored trial's trained sub-network, save it with torch.export (loads with plain "
        "PyTorch: torch.export.load(path).module()), check its outputs against the masked parent on test inputs, "
        "time masked parent, compacted module and program at batch 1 and 128, and add the result to the run's report.",
    )
    ep.add_argument("run_dir", metavar="RUN_DIR")
    ep.add_argument(
        "--trial", required=True, metavar="KEY", help="the trial's key (the key column of trials.csv; a unique prefix is enough)"
    )
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
            "--import",
            dest="imports",
            action="append",
            default=[],
            metavar="FILE.py|MODULE",
            help="import your own models, datasets or finders first (a .py file or a module name; repeatable)",
        )
    return parser


def _add_bench_parser(sub: argparse._SubParsersAction) -> None:
    from ..protocol.options import options

    widths = next(o for o in options() if o.name == "widths")  # what --widths means for run, it means here
    p = sub.add_parser(
        "bench",
        help="time K sub-networks trained four ways (masked+DataLoader ... population)",
        description="`sparsenas bench`: how fast K sub-networks train four ways, side by side in one process.",
    )
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
