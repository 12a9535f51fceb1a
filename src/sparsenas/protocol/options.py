"""The flat view of a run spec: one option per field, a CLI flag and a spec-file key alike.

`RunSpec` nests `TrainSpec` and holds the finders' options; users see one namespace (``--epochs``
beside ``--finders`` beside ``--candidates``). Each `Option` carries its type, default, help, bounds
and choices, so the CLI's flags, their help and metavars, and the spec-file reader are all built from
the declarations: the dataclasses' fields, and each finder's own `Options` (`finders.options`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from ..errors import SparsenasError, quote
from ..finders.base import declared_options
from ..train import TrainSpec
from .spec import MAX_SEEDS, RunSpec


@dataclass(frozen=True)
class Option:
    """One flat option: a CLI flag ``--name-with-dashes`` and a spec-file key ``name_with_underscores``."""

    name: str
    type: Any  # resolved annotation, e.g. tuple[float, ...] or int | None
    default: Any
    help: str
    range: tuple[int, int] | None = None  # inclusive bounds of an integer (of each item of a tuple)
    choices: tuple[str, ...] | None = None
    finders: tuple[str, ...] = ()  # the finders whose option this is (none: shared by every run)
    declared_metavar: str | None = None
    aliases: tuple[str, ...] = ()  # former names, still read from flags and spec files

    @property
    def flags(self) -> list[str]:
        """The flag and its aliases' flags, e.g. ["--population-cap", "--population"]."""
        return [self.flag] + ["--" + a.replace("_", "-") for a in self.aliases]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str:
        """What `--help` shows after the flag: the kind of value it takes.

        >>> [o.metavar for o in options() if o.name in ("sparsities", "device", "epochs")]
        ['S,S,...', '{cpu,cuda,auto}', 'N']
        """
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        if self.declared_metavar:
            return self.declared_metavar
        if self.name in _METAVARS:
            return _METAVARS[self.name]
        tp = self.type
        if type(None) in get_args(tp):  # X | None -> X
            tp = next(a for a in get_args(tp) if a is not type(None))
        if get_origin(tp) is tuple:
            one = {int: "N", float: "S" if self.name == "sparsities" else "X", str: "NAME"}[get_args(tp)[0]]
            return f"{one},{one},..."
        return {int: "N", float: "X", str: "NAME"}[tp]

    @property
    def full_help(self) -> str:
        """The help text with the bounds and the default, e.g. "... (1 to 100,000; default: 30)"."""
        notes = [f"{self.range[0]:,} to {self.range[1]:,}"] if self.range else []
        default = ",".join(map(str, self.default)) if isinstance(self.default, tuple) else self.default
        if default not in (None, ""):
            notes.append(f"default: {default}")
        return self.help + (f" ({'; '.join(notes)})" if notes else "")


_METAVARS = {"seeds": "N|S,S,...", "data_dir": "DIR", "address": "HOST:PORT"}


def options() -> list[Option]:
    """RunSpec's fields, the finders' options in place of `finder_options` and TrainSpec's fields
    in place of `train`: one flat namespace of options.

    >>> next(o for o in options() if o.name == "score_samples").help
    'grasp, snip: training samples in the scoring batch'
    """
    out = []
    for owner in (RunSpec, TrainSpec):
        hints = get_type_hints(owner)
        for f in dataclasses.fields(owner):
            if f.name == "finder_options":
                out += finder_options()
            elif f.name != "train":
                md = f.metadata
                out.append(
                    Option(
                        f.name,
                        hints[f.name],
                        f.default,
                        md.get("help", ""),
                        md.get("range"),
                        md.get("choices"),
                        aliases=md.get("aliases", ()),
                    )
                )
    every_run = {o.name for o in out if not o.finders} | {a for o in out for a in o.aliases} | COMMAND_FLAGS
    clash = every_run & {o.name for o in out if o.finders}
    if clash:  # a finder's option would shadow a flag every run has
        name = sorted(clash)[0]
        owners = next(o.finders for o in out if o.name == name and o.finders)
        raise SparsenasError(f"finder {', '.join(owners)} declares option '{name}', a name every run already has; rename the option")
    return out


# the `run` command's own flags, which are no options of a spec (cli/parsers.py), and argparse's
COMMAND_FLAGS = frozenset({"config", "out", "no_report", "quiet", "import", "imports", "help", "h"})


def finder_options() -> list[Option]:
    """The registered finders' options, one per name (a name shared by finders is one flag)."""
    return [Option(d.name, d.type, d.default, d.help, d.range, d.choices, d.finders, d.metavar) for d in declared_options().values()]


def parse_value(opt: Option, value: Any, source: str | None = None) -> Any:
    """Coerce a flag string (or a value from spec file `source`) to the option's type.

    A value that does not fit raises a one-line `SparsenasError` naming the flag or the file's key.

    >>> opt = next(o for o in options() if o.name == "sparsities")
    >>> parse_value(opt, "0.5,0.9")
    (0.5, 0.9)
    """
    tp = opt.type
    if value is None and type(None) in get_args(tp):
        return None
    if type(None) in get_args(tp):  # X | None -> X
        tp = next(a for a in get_args(tp) if a is not type(None))
    try:
        if opt.name == "seeds":
            return _parse_seeds(value)
        if get_origin(tp) is tuple:
            elem = get_args(tp)[0]
            if isinstance(value, dict):
                raise TypeError  # a table is no list, even if Python would iterate its keys
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(_scalar(elem, v) for v in items if not (isinstance(v, str) and not v.strip()))
        return _scalar(tp, value)
    except (TypeError, ValueError):
        what = opt.flag if source is None else f"key '{opt.name}' in '{source}'"
        kind = f"a count in [1, {MAX_SEEDS}] or a comma-separated list of seeds" if opt.name == "seeds" else _type_word(tp)
        raise SparsenasError(f"{what} must be {kind}, got {quote(value)}") from None


def _parse_seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, int) or (isinstance(value, str) and "," not in value):
        n = _scalar(int, value)
        if not 1 <= n <= MAX_SEEDS:
            raise ValueError
        return tuple(range(n))
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(_scalar(int, v) for v in items if not (isinstance(v, str) and not v.strip()))


def _scalar(tp: type, v: Any) -> Any:
    if isinstance(v, bool) or isinstance(v, (list, dict)):
        raise TypeError  # True is an int to Python, never to a user
    if tp is int:
        if isinstance(v, float) and not v.is_integer():
            raise ValueError
        if not isinstance(v, str):
            return int(v)
        try:
            return int(v.strip())
        except ValueError:
            # "1e6" is a whole number a user may well type: read it, so a bound can be said of it
            f = float(v)
            if not (math.isfinite(f) and f.is_integer()):
                raise
            return int(f)
    if tp is float:
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise TypeError
        return v.strip()
    raise TypeError(tp)


def _type_word(tp: Any) -> str:
    if get_origin(tp) is tuple:
        plural = {int: "integers", float: "numbers", str: "names"}[get_args(tp)[0]]
        return f"a comma-separated list of {plural}"
    return {int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))
