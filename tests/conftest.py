"""Shared fixtures: tiny real data, so the whole suite runs in a few minutes."""

from __future__ import annotations

import os
import tempfile

import pytest

# decoded datasets go to a folder of this session's own, never the user's cache (subprocesses inherit it)
os.environ["SPARSENAS_CACHE"] = tempfile.mkdtemp(prefix="sparsenas-test-cache-")

from sparsenas.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_small():
    return load_dataset("digits", limit=200)
