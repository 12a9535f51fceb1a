"""Dependencies point one way, downward (DESIGN.md): a lower layer never imports an upper one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "sparsenas"
# top to bottom; modules at the package root (errors, registry) are below everything
ORDER = ["cli", "progress", "bench", "frames", "report", "export", "protocol", "store", "finders", "train", "masks", "models", "data", "plugins"]
RANK = {name: i for i, name in enumerate(ORDER)}
SAME_LEVEL = {("models", "data"), ("data", "models")}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            parts = path.relative_to(SRC).parts
            base = list(parts[:-1])[: len(parts) - node.level] if node.level > 1 else list(parts[:-1])
            target = (base + (node.module.split(".") if node.module else []))
            if target:
                out.add(target[0].removesuffix(".py"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sparsenas."):
            out.add(node.module.split(".")[1])
    return out


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_upward_imports(path):
    layer = _layer(path)
    if layer not in RANK:
        return
    for target in _imported_layers(path):
        if target in RANK and target != layer and (layer, target) not in SAME_LEVEL:
            assert RANK[target] > RANK[layer], f"{path.relative_to(SRC)} ({layer}) imports {target}, an upper layer"
