"""The package reads top-down: the import graph of lars/ has no upward edge and no circle.

Every import statement counts, function-level and `TYPE_CHECKING` ones included. An edge
goes to the module named only: `from lars.agent.service import X` reaches
`lars.agent.service`, not `lars.agent`; `from lars.routes import hostmeta` reaches the
submodule `lars.routes.hostmeta`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lars"

DAEMON_PACKAGES = ("agent", "dns", "reporter", "console", "routes", "up")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield submodule if submodule in known else module


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {m for m in _imports(name, path, known) if m in known and m != name}
        for name, path in modules.items()
    }


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module reachable from start, each with the module that first reached it."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        current = todo.pop()
        for nxt in graph[current]:
            if nxt not in seen and nxt != start:
                seen[nxt] = current
                todo.append(nxt)
    return seen


def _path(parents: dict[str, str], start: str, end: str) -> list[str]:
    chain = [end]
    while chain[-1] != start:
        chain.append(parents[chain[-1]])
    return chain[::-1]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


GRAPH = import_graph()


def test_the_graph_sees_the_package() -> None:
    # A parser that found nothing would pass every rule below.
    assert len(GRAPH) > 100
    assert "lars.dns.service" in GRAPH["lars.dns.metrics"]
    assert "lars.routes.hostmeta" in GRAPH["lars.dns.store"]


@pytest.mark.parametrize("daemon", DAEMON_PACKAGES)
def test_obs_imports_no_daemon_package(daemon: str) -> None:
    upward = sorted(
        f"{src} -> {dst}"
        for src, targets in GRAPH.items()
        if _in(src, "lars.obs")
        for dst in targets
        if _in(dst, f"lars.{daemon}")
    )
    assert upward == []


@pytest.mark.parametrize("package", ["lars.console", "lars.routes"])
def test_console_and_route_administration_never_reach_the_route_service(package: str) -> None:
    reached = []
    for start in sorted(m for m in GRAPH if _in(m, package)):
        parents = _reachable(GRAPH, start)
        reached += [
            " -> ".join(_path(parents, start, m)) for m in sorted(parents) if _in(m, "lars.dns")
        ]
    assert reached == []


def test_no_import_circle() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_path_the_readme_names_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    # A dotted path; file names (proto/lars.proto, lars.json) are not module paths.
    named = set(re.findall(r"(?<![/\w.-])lars(?:\.[a-z_][a-z0-9_]*)+", readme))
    named -= {"lars.proto", "lars.json", "lars.conf", "lars.db"}
    assert len(named) > 5
    modules = set(GRAPH)
    missing = []
    for dotted in sorted(named):
        parts = dotted.split(".")
        # The longest prefix that is a module; what follows must be an attribute of it.
        for cut in range(len(parts), 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in modules:
                break
        else:
            missing.append(dotted)
            continue
        rest = parts[cut:]
        if rest and not _defines(prefix, rest[0]):
            missing.append(dotted)
    assert missing == []


def _defines(module: str, name: str) -> bool:
    path = _modules()[module]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name == name:
                return True
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
        elif isinstance(node, ast.ImportFrom | ast.Import) and any(
            (a.asname or a.name.split(".")[-1]) == name for a in node.names
        ):
            return True
    return False


def test_the_readme_layout_line_names_every_package() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = re.search(r"^Layout:.*?(?=\n\n)", readme, re.M | re.S)
    assert layout is not None
    named = set(re.findall(r"`lars/([a-z_]+)/?`", layout.group()))
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages
    assert sorted(packages - named) == []
    assert sorted(named - packages) == []
