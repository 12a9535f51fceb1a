"""Registries that list themselves (timm's ``@register_model``, ``list_models``).

Each layer that has interchangeable parts (datasets, models, finders) keeps one `Registry`. An entry
is one file plus one decorator line; ``sparsenas list`` prints every entry with its one-line help.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import SparsenasError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    help: str


class Registry(Generic[T]):
    """A named collection of entries, filled by a decorator.

    >>> FRUIT = Registry("fruit")
    >>> @FRUIT.register("apple", help="a red one")
    ... def apple(): return "apple"
    >>> FRUIT.get("apple")()
    'apple'
    >>> FRUIT.names()
    ['apple']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, help: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._entries:
                warnings.warn(f"{self.kind} '{name}' registered twice; the later one wins", stacklevel=2)
            self._entries[name] = Entry(name, obj, help)
            return obj

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._entries[name].obj
        except KeyError:
            raise SparsenasError(
                f"unknown {self.kind} '{name}'; choose one of: {', '.join(self.names())}"
                f" (one registered in your own code needs --import FILE.py)"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
