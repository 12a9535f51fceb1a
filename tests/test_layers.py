"""Dependencies point one way, downward (DESIGN.md): a lower layer never imports an upper one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "sparsenas"
# top to bottom; modules at the package root (errors, registry) are below everything
ORDER = ["cli", "progress", "bench", "frames", "report", "export", "protocol", "store", "finders", "predict", "train", "masks", "models", "data"]
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


# modules at the package root that every layer may use: they import no layer at all
FOUNDATION = ("errors", "registry", "measures", "runtime", "timing", "plugins", "cachedir")


@pytest.mark.parametrize("name", FOUNDATION)
def test_foundation_modules_import_no_layer(name):
    imported = _imported_layers(SRC / f"{name}.py")
    assert not imported & set(ORDER), f"{name}.py imports {sorted(imported & set(ORDER))}; it must stay below every layer"


def test_every_root_module_has_a_place():
    # a new module at the root must be placed in ORDER or FOUNDATION, or the checks above skip it
    roots = {p.stem for p in SRC.glob("*.py")} - {"__init__", "__main__"}
    assert roots <= set(ORDER) | set(FOUNDATION), sorted(roots - set(ORDER) - set(FOUNDATION))


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The sparsenas modules `path` imports (any depth, function-level imports included), dotted."""
    here = _module_of(path).split(".") if _module_of(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("sparsenas."):
                target = node.module.split(".")[1:]
            else:
                continue
            names = [".".join(target + [a.name]) for a in node.names]
            out.update(n for n in names if n in MODULES) or out.add(".".join(target))
        elif isinstance(node, ast.Import):
            out.update(a.name.removeprefix("sparsenas.") for a in node.names if a.name.startswith("sparsenas."))
    return {m for m in out if m in MODULES and m != _module_of(path)}


MODULES = {_module_of(p) for p in SRC.rglob("*.py")}


def test_no_import_circle():
    """No module reaches itself through imports (the runner and the Ray executor once did)."""
    graph = {_module_of(p): _imports(p) for p in SRC.rglob("*.py")}
    # a package's __init__ only hands names on: an edge into it stands for edges into its modules
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if n == "" or m.startswith(n + ".") or n.startswith(m + ".") or (m and "." not in m and n == m):
                continue  # a module and its own package's __init__
            if state.get(n) == 1:
                cycle = trail[trail.index(n):] + [n] if n in trail else [m, n]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if n not in state:
                visit(n, trail + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
