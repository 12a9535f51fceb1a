"""Where sparsenas keeps what it can make again: `sparsenas list`'s text, decoded datasets.

Imports nothing heavy: `sparsenas list` and `--help` read it before torch is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

OFF = ("0", "off", "no", "none")


def cache_dir() -> Path | None:
    """`$SPARSENAS_CACHE`, else `$XDG_CACHE_HOME/sparsenas`, else `~/.cache/sparsenas`; None when
    `SPARSENAS_CACHE=off` (or empty) turns caching off, or there is no home to find.

    >>> os.environ["SPARSENAS_CACHE"] = "/tmp/kept"; str(cache_dir())
    '/tmp/kept'
    >>> os.environ["SPARSENAS_CACHE"] = "off"; cache_dir() is None
    True
    >>> del os.environ["SPARSENAS_CACHE"]
    """
    env = os.environ.get("SPARSENAS_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", *OFF) else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):
            return None
    return Path(base) / "sparsenas"
