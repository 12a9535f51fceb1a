"""Finder layer: one file per finder, registered by name."""

from ..measures import SearchCost
from . import (  # noqa: E402,F401  (registration)
    bn_scale,
    dense,
    evolution,
    grasp,
    halving,
    imp,
    l1_norm,
    lce_search,
    magnitude,
    nsga2,
    random,
    random_erk,
    random_search,
    snip,
    synflow,
)
from .base import FINDERS, Finder, Found, SearchContext, get_finder, register

__all__ = ["FINDERS", "Finder", "Found", "SearchContext", "SearchCost", "get_finder", "register"]
