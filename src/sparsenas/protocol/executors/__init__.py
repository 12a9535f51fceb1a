"""Executors: where a run's populations train (`local`, `ray`), behind one small interface."""

from . import local, ray_cluster  # noqa: F401  (registration)
from .base import EXECUTORS, Driver, Executor, get_executor, register

__all__ = ["EXECUTORS", "Driver", "Executor", "get_executor", "register"]
