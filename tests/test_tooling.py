"""The linter, the formatter and the type checker pass on src/, as configured in pyproject.toml.

Run by the README's test command, so CI runs them with everything else. They are pinned in the
`test` extra; a machine without them skips with the reason, never silently.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "args",
    [("ruff", "check", "src"), ("ruff", "format", "--check", "src"), ("mypy",)],
    ids=["ruff check", "ruff format", "mypy"],
)
def test_tool_passes(args):
    if shutil.which(args[0]) is None and subprocess.run([sys.executable, "-m", args[0], "--version"], capture_output=True).returncode:
        pytest.skip(f"{args[0]} is not installed; pip install -e '.[test]' installs it")
    r = _run(*args)
    assert r.returncode == 0, f"{' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
