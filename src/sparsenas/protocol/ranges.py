"""How a spec's values are checked against their fields' declared bounds and choices: one line
naming the flag, the value and, past an upper bound, why the bound is there.

>>> from sparsenas.train import TrainSpec
>>> check_ranges(TrainSpec(epochs=0))
Traceback (most recent call last):
  ...
sparsenas.errors.SparsenasError: --epochs must be at least 1, got 0
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import SparsenasError, quote


def check_ranges(owner: Any) -> None:
    """Every integer field that declares a "range" holds values inside it (tuples: each item).

    The bounds say what makes sense, not what fits a machine word: a --threads of 2^64 would
    otherwise overflow inside torch, and a --synflow-iterations of 2^64 would run until killed.
    """
    for f in dataclasses.fields(owner):
        if "range" in f.metadata:
            check_range(f.name, getattr(owner, f.name), f.metadata["range"], _ABOVE.get(f.name))


def check_range(name: str, value: Any, bounds: tuple[int, int], above: str | None) -> None:
    lo, hi = bounds
    flag = "--" + name.replace("_", "-")
    for v in value if isinstance(value, tuple) else () if value is None else (value,):
        if v < lo:
            raise SparsenasError(f"{flag} must be at least {lo}, got {quote(v)}")
        if v > hi:
            raise SparsenasError(f"{flag} must be at most {hi:,}, got {quote(v)}; {above or 'that is more than any run needs'}")


# why each bound is where it is, said when a value passes it
_ABOVE = {
    "threads": "more threads than cores only slows torch down; e.g. --threads 1",
    "batch_size": "a batch larger than the training split is the whole split; e.g. --batch-size 128",
    "limit": "leave --limit out to use every sample",
    "population_cap": "populations are capped by memory long before this; e.g. --population-cap 128",
    "widths": "a million units in one layer does not fit in memory; e.g. --widths 300,100",
}


def check_choice(name: str, value: str, owner: type) -> None:
    choices = next(f.metadata["choices"] for f in dataclasses.fields(owner) if f.name == name)
    if value not in choices:
        raise SparsenasError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, got {value!r}")
