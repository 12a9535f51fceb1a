"""Helpers shared by the tests: tiny run specs and the Fashion-MNIST skip marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparsenas.protocol import RunSpec
from sparsenas.train import TrainSpec

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist not installed")


def tiny_spec(**overrides) -> RunSpec:
    """A run that takes about a second: digits slice, small MLP, 2 sparsities, 2 seeds, 3 epochs."""
    train = TrainSpec(epochs=overrides.pop("epochs", 3), lr=overrides.pop("lr", 0.05), augment=overrides.pop("augment", "none"))
    base = dict(dataset="digits", limit=300, model="mlp", widths=(32, 16), sparsities=(0.5, 0.8), seeds=(0, 1), candidates=4)
    base.update(overrides)
    return RunSpec(**base, train=train).validate()


def shipped(registry) -> list[str]:
    """The names of a registry's entries that sparsenas ships: the registry-driven tests run over
    these, not over what other test modules (or examples) register while the suite is collected."""
    return [e.name for e in registry.entries() if getattr(e.obj, "__module__", "").startswith("sparsenas.")]


# the field's conv/BatchNorm parents at widths that keep a test to a fraction of a second; the
# older parents build at their own widths (None), as their pinned numbers expect
TINY_WIDTHS: dict[str, tuple[int, ...]] = {"resnet20": (4,), "resnet32": (4,), "resnet56": (4,), "vgg11-bn": (8,), "vgg16-bn": (8,)}
# deeper members of one family exercise no other code: registry-wide finder tests take one of each
SAME_CODE_AS = {"resnet32": "resnet20", "resnet56": "resnet20", "vgg16-bn": "vgg11-bn"}


def tiny_widths(model: str) -> tuple[int, ...] | None:
    return TINY_WIDTHS.get(model)
