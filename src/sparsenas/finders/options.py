"""A finder's options: a typed, frozen dataclass in the finder's own file (open_lth's hparams).

Each field is one option: its type, default, help and bounds live in the declaration
(``field(default=20, metadata={"help": ..., "range": (1, 100_000)})``), so the CLI flag, the
spec-file key, the bounds check and the report are all built from it. A name is one flag: two
finders that declare the same name (random-search and halving both take ``candidates``) are set
together, so their declarations must agree; `check_agreement` refuses them at registration if not.

Metadata keys a field may carry: "help" (no finder prefix: the flag's help adds the finders),
"range" (inclusive integer bounds, of each item for a tuple), "above" (why the upper bound is
there, said when a value passes it), "metavar", "implies_finder" (giving the option a value
other than its default adds the declaring finder to the run), and "later" (declared after the
finder's trials were first stored: the option enters the trial key only when set to another value
than its default, so every stored key of the finder holds; see `FinderOptions.as_dict`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, get_args, get_type_hints

from ..errors import SparsenasError

AGREE = ("type", "default", "range", "choices")  # what two declarations of one name must share


@dataclass(frozen=True)
class FinderOptions:
    """Base of every finder's options; a finder without options keeps this empty one.

    >>> FinderOptions().as_dict(), FinderOptions.tiny()
    ({}, FinderOptions())
    """

    def validate(self, in_run: bool = True) -> None:
        """Checks beyond the declared bounds (which the protocol checks): raise a one-line
        `SparsenasError` that names the flags. Every spec checks every finder's values (a bad
        --imp-rate is refused even without imp); `in_run` says whether this finder runs, for
        checks that matter only then (nsga2's front must fit its population)."""

    @classmethod
    def tiny(cls) -> FinderOptions:
        """Values for a test-size search (a couple of candidates, a couple of steps)."""
        return cls()

    def as_dict(self) -> dict[str, Any]:
        """{name: value} in declaration order: what enters the finder's trial keys. An option
        declared "later" is left out while at its default (the keys stored before it existed).

        >>> from dataclasses import field
        >>> @dataclass(frozen=True)
        ... class A(FinderOptions):
        ...     n: int = 2
        ...     m: str = field(default="none", metadata={"later": True})
        >>> A().as_dict(), A(m="ridge").as_dict()
        ({'n': 2}, {'n': 2, 'm': 'ridge'})
        """
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not (f.metadata.get("later") and getattr(self, f.name) == f.default)
        }


@dataclass(frozen=True)
class Declaration:
    """One option name as every finder that declares it sees it: one flag, one spec-file key."""

    name: str
    type: Any  # resolved annotation, e.g. int or tuple[str, ...]
    default: Any
    helps: tuple[tuple[str, str], ...]  # (finder, its help), in registration order
    range: tuple[int, int] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    above: str | None = None  # why the upper bound is where it is
    implies: tuple[str, ...] = ()  # finders a non-default value adds to the run

    @property
    def finders(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.helps)

    @property
    def help(self) -> str:
        """The flag's help, naming the finders it sets.

        >>> Declaration("n", int, 1, (("a", "masks"), ("b", "masks"))).help
        'a, b: masks'
        """
        texts = {h for _, h in self.helps}
        if len(texts) == 1:
            return f"{', '.join(self.finders)}: {texts.pop()}"
        return "; ".join(f"{f}: {h}" for f, h in self.helps)


def fields_of(finder: str, options: type[FinderOptions]) -> list[Declaration]:
    """`options`' fields as declarations of `finder` (every field must have a default)."""
    if not (isinstance(options, type) and issubclass(options, FinderOptions) and dataclasses.is_dataclass(options)):
        raise SparsenasError(f"finder '{finder}': Options must be a dataclass subclassing FinderOptions, got {options!r}")
    hints = get_type_hints(options)
    out = []
    for f in dataclasses.fields(options):
        if f.default is dataclasses.MISSING:
            raise SparsenasError(f"finder '{finder}': option '{f.name}' has no default; give it one in field(default=...)")
        md = f.metadata
        out.append(
            Declaration(
                f.name,
                hints[f.name],
                f.default,
                ((finder, md.get("help", "")),),
                md.get("range"),
                md.get("choices"),
                md.get("metavar"),
                md.get("above"),
                (finder,) if md.get("implies_finder") else (),
            )
        )
    return out


def merge(finders: Iterable[tuple[str, type[FinderOptions]]]) -> dict[str, Declaration]:
    """One declaration per option name over `finders` ((name, Options) pairs), refusing two that
    disagree on type, default, range or choices.

    >>> from dataclasses import field
    >>> @dataclass(frozen=True)
    ... class A(FinderOptions):
    ...     n: int = field(default=2, metadata={"help": "masks", "range": (1, 9)})
    >>> merge([("a", A), ("b", A)])["n"].help
    'a, b: masks'
    >>> @dataclass(frozen=True)
    ... class B(FinderOptions):
    ...     n: int = 3
    >>> merge([("a", A), ("b", B)])
    Traceback (most recent call last):
    sparsenas.errors.SparsenasError: finder 'b' declares option 'n' with default 3, but a declares it with default 2; one flag (--n) sets every finder that declares it: declare it alike or rename it
    """
    out: dict[str, Declaration] = {}
    for finder, options in finders:
        for d in fields_of(finder, options):
            old = out.get(d.name)
            if old is None:
                out[d.name] = d
                continue
            for what in AGREE:
                if getattr(old, what) != getattr(d, what):
                    raise SparsenasError(
                        f"finder '{finder}' declares option '{d.name}' with {what} {_show(getattr(d, what))}, but "
                        f"{', '.join(old.finders)} declares it with {what} {_show(getattr(old, what))}; one flag "
                        f"(--{d.name.replace('_', '-')}) sets every finder that declares it: declare it alike or rename it"
                    )
            out[d.name] = dataclasses.replace(
                old,
                helps=old.helps + d.helps,
                metavar=old.metavar or d.metavar,
                above=old.above or d.above,
                implies=old.implies + d.implies,
            )
    return out


def _show(x: Any) -> str:
    # int, not <class 'int'>; tuple[str, ...] and values as Python writes them
    return x.__name__ if isinstance(x, type) and not get_args(x) else repr(x)
