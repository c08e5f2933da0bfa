"""No import cycles among the project's own modules (`shared`, `services`, `hrcase`).

A cycle works only while some import stays deferred inside a function or the import order
happens to suit it; it also means two modules each need a piece of the other, which belongs
in a third (domain or adapters). This walks the source with `ast`, so it sees deferred
imports too (only `if TYPE_CHECKING:` blocks are left out: they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "hrcase")


def module_name(path: Path) -> str:
    """`services/audit/export.py` -> `services.audit.export`; a package is its `__init__`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every importable module of the project's packages, by dotted name (tests excluded)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).parts
            if "tests" in relative or "migrations" in relative:
                continue  # test modules and Alembic scripts are not imported by the code
            modules[module_name(path)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run (at module level or deferred in a function)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that importing `name` executes directly (its imports' targets)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for candidate in candidates:
            # Importing a.b.c runs a, a.b and a.b.c; a package's own __init__ is not an edge
            # of its submodules (Python runs it first, before any of them).
            parts = candidate.split(".")
            for end in range(1, len(parts) + 1):
                target = ".".join(parts[:end])
                if target in known and target != name and not name.startswith(f"{target}."):
                    targets.add(target)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle (a -> b -> ... -> a) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    def strongconnect(node: str) -> None:  # Tarjan; the graph is small, recursion is fine
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return [_cycle_in(sorted(component), graph) for component in components]


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first member (breadth-first)."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    return component  # unreachable for a strongly connected component


def test_the_walker_sees_a_cycle() -> None:
    """The detector itself: a known cycle is found and named in order."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_walker_sees_deferred_and_relative_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n    from services.audit import never\n"
        "def later():\n    from services.audit.export import x\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    known = {"services.audit.sibling", "services.audit.export", "services.audit.never"}
    found = imported_modules("services.audit.mod", path, known)
    assert found == {"services.audit.sibling", "services.audit.export"}


def test_no_import_cycles_among_project_modules() -> None:
    graph = import_graph()
    assert "services.audit.application.export" in graph  # the walk found the project's modules
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_kernel_imports_no_service() -> None:
    """`shared` is the mechanism only: it must not know which services exist or what they
    consume (their subscriptions reach it through ServiceSpec; hrcase.services collects
    all of them for the ops tools)."""
    graph = import_graph()
    assert "shared.topology" in graph
    leaks = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module == "shared" or module.startswith("shared.")
        for target in targets
        if not (target == "shared" or target.startswith("shared."))
    )
    assert not leaks, "the kernel imports outside itself:\n" + "\n".join(leaks)
