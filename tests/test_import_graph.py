"""The package's import graph has no circles and keeps its layers apart.

A circle, even a type-only one under ``TYPE_CHECKING`` or an import inside a function, means two modules
cannot be read (or moved) one without the other. The graph is built with ``ast`` from every ``twin/**/*.py``,
so it sees every import statement wherever it sits, not only those that run at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "twin"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules (``twin.line.dist.cycle_dist`` -> its module)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of ours that ``module`` names in an import statement, at any depth of its syntax tree."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from twin.sim import linefile`` names the module twin.sim.linefile, not the package.
            names = [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports."""
    modules = _modules()
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every circle lies in one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_circles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_type_only_and_function_level_imports() -> None:
    graph = import_graph()
    # hil/mirror.py names Call only under TYPE_CHECKING; commands/plc.py loads the line inside a function.
    assert "twin.profile.calls" in graph["twin.hil.mirror"]
    assert "twin.line.linefile" in graph["twin.commands.plc"]


def test_no_import_circles() -> None:
    graph = import_graph()
    # A package's __init__ re-exporting its own modules is not a circle a reader walks; leave those edges out.
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    for module in packages:
        graph[module] = {t for t in graph[module] if not t.startswith(module + ".")}
    found = circles(graph)
    assert found == [], "modules importing each other:\n" + "\n".join(", ".join(c) for c in found)


# What each package may import from the others: data flows line file + profile -> sim -> transport -> metrics ->
# report, with run/ wiring them on top and commands/ at the edge. The MES side (mes, hil's proxy, ct, ipc,
# energy) reads profiles and lines, never the model. Base modules (errors, datafile, datadirs, durations, the
# package root) are free for all.
BASE = {"errors", "datafile", "datadirs", "durations", "aio", "twin"}
MAY_IMPORT: dict[str, set[str]] = {
    "profile": set(),
    "line": {"profile"},
    "sim": {"line", "profile"},
    "metrics": set(),
    "transport": {"profile", "metrics"},
    "mes": {"line", "profile"},
    "ct": {"profile", "metrics"},
    "ipc": {"profile"},
    "energy": {"line", "profile", "metrics"},
    "hil": {"line", "profile", "metrics", "transport"},
    "report": {"metrics", "mes"},  # mes: the answer codes the spec page lists
    "run": {"line", "profile", "sim", "transport", "metrics", "report", "hil", "energy"},
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_packages_import_only_the_layers_below() -> None:
    graph = import_graph()
    upward = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        for t in targets
        if _package(m) in MAY_IMPORT
        and _package(t) != _package(m)
        and _package(t) not in BASE | MAY_IMPORT[_package(m)]
    )
    assert upward == []


@pytest.mark.parametrize("package", ["twin.mes", "twin.hil", "twin.energy", "twin.transport", "twin.line"])
def test_line_description_is_not_the_simulation(package: str) -> None:
    """mes, hil, energy, transport and line read a line through twin.line, never through the model."""
    graph = import_graph()
    leaks = {
        (m, t)
        for m, targets in graph.items()
        for t in targets
        if (m == package or m.startswith(package + ".")) and t.startswith("twin.sim")
    }
    assert leaks == set()
