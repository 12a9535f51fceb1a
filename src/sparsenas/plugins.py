"""Loading the user's own registrations (models, datasets, finders) into a command.

A run whose parent, dataset or finder was registered in the user's code names it in its stored
spec; ``report`` and ``export`` rebuild from that spec and must see the same registrations. Two
ways in, both on every command:

- ``--import FILE.py`` or ``--import package.module`` (repeatable): imported before the command runs;
- an installed package that declares an entry point in the group ``sparsenas.plugins``
  (``[project.entry-points."sparsenas.plugins"] mine = "my_pkg.sparsenas_parts"``): imported
  on every command, so its names work without a flag.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from .errors import SparsenasError

ENTRY_POINT_GROUP = "sparsenas.plugins"


def import_user_code(target: str) -> ModuleType:
    """Import a Python file or a module by name, turning any failure into one line.

    >>> import tempfile, pathlib; f = pathlib.Path(tempfile.mkdtemp()) / "mine.py"
    >>> _ = f.write_text("X = 41 + 1\\n"); import_user_code(str(f)).X
    42
    >>> import_user_code("no_such_module_here")
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: --import no_such_module_here: no file or module of that name; ...
    """
    path = Path(target)
    try:
        if target.endswith(".py") or path.is_file():
            if not path.is_file():
                raise SparsenasError(f"--import {target}: file not found; pass a .py file or an importable module name")
            # a stable module name per file, so a second import of the same file is the same module
            # (and Ray's pickling by value sees one module, not two)
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]  # not hash(): salted per process
            name = f"sparsenas_user_{path.resolve().stem}_{digest}"
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise SparsenasError(f"--import {target}: not a Python file; pass a .py file or a module name")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            # the file's folder on the path, as `python FILE` would have it: it may import its neighbours
            sys.path.insert(0, str(path.resolve().parent))
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            return module
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")  # a module in the current folder, as `python -m` finds it
        try:
            return importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name and target.startswith(e.name):  # the target itself is missing, not one of its imports
                raise SparsenasError(
                    f"--import {target}: no file or module of that name; pass a path to a .py file or a module on PYTHONPATH"
                ) from None
            raise
    except SparsenasError:
        raise
    except (Exception, SystemExit) as e:  # the user's code failed: say where, in one line
        raise SparsenasError(f"--import {target} failed: {type(e).__name__}: {e}; fix that file and re-run") from None


def load_plugins(targets: list[str] | None = None) -> list[str]:
    """Import every installed ``sparsenas.plugins`` entry point, then each of `targets`; return their names.

    >>> load_plugins([])
    []
    """
    loaded = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:  # an installed package's plugin is broken: name it, do not run half-registered
            raise SparsenasError(
                f"plugin '{ep.name}' ({ep.value}) failed to load: {type(e).__name__}: {e}; fix or uninstall that package"
            ) from None
        loaded.append(ep.value)
    for target in targets or []:
        import_user_code(target)
        loaded.append(target)
    return loaded
