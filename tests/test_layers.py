"""The package's imports point down the layers the README lists, and no modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sam2rl"

LAYERS = [
    {"errors", "atomic", "lookup", "metrics", "memory_reuse", "schema"},
    {"datasets", "synth"},
    {"tracker"},
    {"controllers", "rewards"},
    {"envs", "pretrain"},
    {"agents", "predictor"},
    {"evaluation"},
    {"tasks", "benchmark"},
    {"cli", "run_cli", "lightning_cli", "__init__", "__main__"},
]
"""README, Development: bottom to top."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """The sam2rl modules `name` imports anywhere in its file (function-level imports included)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in MODULES and target != name}
    return found


def _layer(name: str) -> int:
    parts = name.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    for index, layer in enumerate(LAYERS):
        if key in layer:
            return index
    raise AssertionError(f"{name}: in no layer of the README's list; add its folder there and to LAYERS")


def test_every_module_has_a_layer_and_imports_only_its_own_layer_or_below() -> None:
    upward = [f"{name} (layer {_layer(name) + 1}) imports {other} (layer {_layer(other) + 1})"
              for name in sorted(MODULES) for other in sorted(_imports(name)) if _layer(other) > _layer(name)]
    assert not upward, "\n".join(upward)


def test_no_import_circle() -> None:
    graph = {name: _imports(name) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert not circles, circles
