"""Shared fixtures: tiny real data, so the whole suite runs in a few minutes."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# decoded datasets go to a folder of this session's own, never the user's cache (subprocesses
# inherit it); removed when the session ends (Fashion-MNIST's entry alone is 220 MB)
os.environ["SPARSENAS_CACHE"] = tempfile.mkdtemp(prefix="sparsenas-test-cache-")
atexit.register(shutil.rmtree, os.environ["SPARSENAS_CACHE"], ignore_errors=True)

from sparsenas.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_small():
    return load_dataset("digits", limit=200)
