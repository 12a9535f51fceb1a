"""sparsenas: sparse sub-network search and its fair evaluation against random sub-networks.

``from sparsenas import load_run`` reads a run directory into pandas DataFrames (`sparsenas.frames`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_run"]


def __getattr__(name: str) -> Any:
    # lazy (PEP 562): importing the package, as every `sparsenas.x` import and the CLI do, must not
    # import torch and the store just to offer load_run
    if name == "load_run":
        from .frames import load_run

        return load_run
    raise AttributeError(f"module 'sparsenas' has no attribute {name!r}")
