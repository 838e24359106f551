"""No two modules of haprotect import each other, directly or around a loop.

Every import counts, at module level or inside a function (an import put off
until run time is still a dependency). Those under ``if TYPE_CHECKING:`` are
checked on their own too: two modules that need each other's types cannot be
understood apart either. A cycle is reported as the strongly connected group
of modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(
    tree: ast.AST, here: str, is_package: bool, known: set[str], *, types: bool = False
) -> set[str]:
    """The modules of ``known`` that ``here`` imports (``types``: also for type checking)."""
    found: set[str] = set()
    base = here if is_package else here.rpartition(".")[0]

    def resolve(name: str) -> None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != here:
            found.add(name)

    def visit(node: ast.AST) -> None:
        if not types and isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            origin = base
            for _ in range(node.level - 1):
                origin = origin.rpartition(".")[0]
            module = (
                node.module or ""
                if node.level == 0
                else ".".join(p for p in (origin, node.module) if p)
            )
            for alias in node.names:
                resolve(f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def cycles(*, types: bool = False) -> list[set[str]]:
    paths = {module_name(p): p for p in SRC.joinpath("haprotect").rglob("*.py")}
    known = set(paths)
    graph = {
        name: imported(
            ast.parse(path.read_text()), name, path.name == "__init__.py", known, types=types
        )
        for name, path in paths.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_the_finder_sees_imports_in_functions_but_not_type_checking_ones() -> None:
    tree = ast.parse("import haprotect.b\nfrom haprotect import c\n")
    found = imported(tree, "haprotect.a", False, {"haprotect", "haprotect.b", "haprotect.c"})
    assert found == {"haprotect.b", "haprotect.c"}
    lazy = ast.parse("def f():\n    from haprotect.b import x\n")
    assert imported(lazy, "haprotect.a", False, {"haprotect", "haprotect.b"}) == {"haprotect.b"}
    typed = ast.parse("if TYPE_CHECKING:\n    import haprotect.b\n")
    assert imported(typed, "haprotect.a", False, {"haprotect", "haprotect.b"}) == set()
    found = imported(typed, "haprotect.a", False, {"haprotect", "haprotect.b"}, types=True)
    assert found == {"haprotect.b"}


def test_no_module_imports_itself_around_a_loop() -> None:
    assert cycles() == []


def test_no_two_modules_need_each_others_types() -> None:
    assert cycles(types=True) == []
