"""The house's layout, read from the source with `ast`: no import circles, no module
reaching into another package's private names, and files and functions a reader can hold
in their head. Every import counts, including those inside functions and under
TYPE_CHECKING: an import that only runs late still ties two rooms together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "selfcodealign"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute dotted name that `from <level dots><node.module> import ...` names."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _ours(name: str) -> str | None:
    """The longest module of ours that `name` is or lies in (a.b.c -> a.b when c is a name)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str, source: str | None = None) -> list[tuple[str, list[str], int]]:
    """(imported module of ours, names imported from it, line) for every import in `module`."""
    tree = ast.parse(MODULES[module].read_text() if source is None else source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _ours(alias.name)
                if target:
                    found.append((target, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES:  # `from x import y` where y is a submodule imports x.y
                    found.append((sub, [], node.lineno))
                else:
                    target = _ours(source)
                    if target:
                        found.append((target, [alias.name], node.lineno))
    return found


def import_graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in imports(m) if t != m} for m in MODULES}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles of modules: strongly connected components with more than one module
    (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(components)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path that returns to its start) through each circle."""
    return [_a_cycle(graph, set(c)) for c in circles(graph)]


def _a_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def _short(module: str) -> str:
    return module.removeprefix(PACKAGE + ".")


def _cycle_report(found: list[list[str]]) -> str:
    lines = []
    for cycle, circle in found:
        lines.append("  " + " -> ".join(map(_short, cycle)))
        if len(circle) > len(cycle) - 1:
            lines.append("    (one circle with: " + ", ".join(map(_short, circle)) + ")")
    return "import circles:\n" + "\n".join(lines)


def _found(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    return [(_a_cycle(graph, set(c)), c) for c in circles(graph)]


def _in_sandbox(cycle: list[str]) -> bool:
    return all(m.startswith(f"{PACKAGE}.sandbox.") or m == f"{PACKAGE}.sandbox" for m in cycle)


def test_no_import_circles_outside_the_sandbox():
    found = [f for f in _found(import_graph()) if not _in_sandbox(f[1])]
    assert not found, _cycle_report(found)


def test_no_import_circles_inside_the_sandbox():
    found = [f for f in _found(import_graph()) if _in_sandbox(f[1])]
    assert not found, _cycle_report(found)


def _package_of(module: str) -> str:
    return module if _is_package(module) else module.rpartition(".")[0]


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def private_reaches() -> list[str]:
    """Imports of a private name (`_x`, or a module `_x.py`) from outside the package that
    owns it. The top-level package's own modules count as one room each."""
    bad = []
    for module in MODULES:
        for target, names, line in imports(module):
            owner = _package_of(target)
            if owner == PACKAGE:
                owner = target
            if _inside(module, owner):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in target.split(".") if p.startswith("_") and not p.startswith("__")]
            if private:
                where = MODULES[module].relative_to(SRC)
                bad.append(f"{where}:{line} imports {', '.join(private)} from {_short(target)}")
    return bad


def test_no_module_imports_another_packages_private_names():
    bad = private_reaches()
    assert not bad, "private names imported from outside their package:\n" + "\n".join(bad)


def test_no_source_file_is_over_600_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in MODULES.values()
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def long_functions() -> dict[str, int]:
    long = {}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                n = node.end_lineno - first + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC)}:{node.lineno} {node.name}"] = n
    return long


def test_no_function_is_over_80_lines():
    long = long_functions()
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(
        f"  {k}: {n}" for k, n in sorted(long.items())
    )


# The checker itself, on small made-up graphs and sources.


def test_cycles_finds_a_ring_and_reports_it_as_a_closed_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_cycles_finds_nothing_in_a_line():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_imports_inside_functions_and_of_submodules_are_resolved_to_our_modules():
    source = (
        "import json\n"
        "from selfcodealign import errors\n"
        "def f():\n"
        "    from .data import _private, public\n"
        "    import selfcodealign.ids\n"
        "    from selfcodealign.errors import UserError\n"
    )
    found = imports(f"{PACKAGE}.train.loop", source)
    assert found == [
        (f"{PACKAGE}.errors", [], 2),
        (f"{PACKAGE}.train.data", ["_private"], 4),
        (f"{PACKAGE}.train.data", ["public"], 4),
        (f"{PACKAGE}.ids", [], 5),
        (f"{PACKAGE}.errors", ["UserError"], 6),
    ]


@pytest.mark.parametrize(
    "module,level,name,expected",
    [
        (f"{PACKAGE}.train.loop", 1, "data", f"{PACKAGE}.train.data"),
        (f"{PACKAGE}.train", 1, "data", f"{PACKAGE}.train.data"),
        (f"{PACKAGE}.train.loop", 2, "config", f"{PACKAGE}.config"),
    ],
)
def test_relative_imports_resolve_to_our_modules(module, level, name, expected):
    node = ast.ImportFrom(module=name, names=[ast.alias(name="x")], level=level)
    assert _absolute(module, node) == expected
