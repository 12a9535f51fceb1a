"""Store layer: SQLite run store and the trial record shape."""

from .lock import run_lock
from .records import EpochRecord, SearchCost, TrialRecord
from .sqlite import DB_NAME, Store

__all__ = ["DB_NAME", "EpochRecord", "SearchCost", "Store", "TrialRecord", "run_lock"]
