"""What ``sparsenas list`` prints, without importing torch when the text cannot have changed.

The registries fill as their modules are imported, and those modules import torch (1.4 s on this
project's busy 2-core machine, before anything is listed). The list is names and help lines, which
change only when sparsenas's own source does, so the text is rendered from the live registries
once and kept in the user's cache folder under a hash of that source (Python keeps its bytecode
beside the source for the same reason). The kept text is used only while no registry has been
imported: a plugin that registers a finder, model or dataset imports its registry first, and then
the live registries are listed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from ..cachedir import cache_dir

# the layers whose import fills a registry; a plugin that registers anything has imported one
REGISTRY_MODULES = ("sparsenas.data", "sparsenas.models", "sparsenas.finders")
PACKAGE = Path(__file__).resolve().parent.parent  # src/sparsenas
STALE_SECONDS = 7 * 24 * 3600  # a kept list of another source older than this is removed


def render() -> str:
    """The list, from the live registries (importing every built-in dataset, model and finder).

    >>> print(render())  # doctest: +ELLIPSIS
    datasets:
      cifar10 ...
    finders (spaces: the masks a finder searches; --space picks node or weight):
    ...
    """
    from ..data import DATASETS
    from ..finders import FINDERS
    from ..models import MODELS

    lines = []
    for title, reg in (("datasets", DATASETS), ("models", MODELS)):
        lines.append(f"{title}:")
        lines += [f"  {e.name:<16} {e.help}" for e in reg.entries()]
    lines.append("finders (spaces: the masks a finder searches; --space picks node or weight):")
    lines += [f"  {e.name:<16} {'+'.join(e.obj.spaces):<12} {e.help}" for e in FINDERS.entries()]
    return "\n".join(lines) + "\n"


def source_hash(package: Path = PACKAGE) -> str:
    """A hash of every .py file of `package` (paths and contents) and the Python version: what the list is made of.

    >>> len(source_hash()), source_hash() == source_hash()
    (16, True)
    """
    h = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def catalog() -> str:
    """The text of ``sparsenas list``: the kept copy when it is the live one's, else the live one (kept for next time).

    >>> catalog() == render()
    True
    """
    if any(m in sys.modules for m in REGISTRY_MODULES):
        return render()  # registries may hold the user's entries (or the kept copy is of no use: torch is in)
    folder = cache_dir()
    if folder is None:
        return render()
    kept = folder / f"list-{source_hash()}.txt"
    try:
        return kept.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    text = render()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("list-*.txt"):  # kept for an older source (or another install, which keeps it a week)
            if old.stat().st_mtime < time.time() - STALE_SECONDS:
                old.unlink(missing_ok=True)
        partial = kept.with_name(f"{kept.name}.{os.getpid()}.partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, kept)  # whole or absent: a second `list` running now never reads half
    except OSError:
        pass  # a read-only or full cache folder: the list is printed all the same
    return text
