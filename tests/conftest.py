"""Shared fixtures: tiny real data, so the whole suite runs in a few minutes."""

from __future__ import annotations

import pytest

from sparsenas.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_small():
    return load_dataset("digits", limit=200)
