"""Finder layer: one file per finder, registered by name."""

from ..measures import SearchCost
from .base import FINDERS, Finder, Found, SearchContext, get_finder, register
from . import dense, evolution, grasp, halving, imp, magnitude, nsga2, random, random_search, snip, synflow  # noqa: E402,F401  (registration)

__all__ = ["FINDERS", "Finder", "Found", "SearchContext", "SearchCost", "get_finder", "register"]
