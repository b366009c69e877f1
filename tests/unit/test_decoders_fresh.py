"""No protobuf decoder in lars keeps a message across messages (issue 19, item 1).

With protobuf's upb backend a reused message keeps every parse's unknown-field bytes in
its arena (Clear() and DiscardUnknownFields() give none back): the agent grew by 147 MB
per 2,000 datagrams of 60 kB. The RSS tests (tests/e2e/test_unknown_fields_memory.py)
measure the daemons; this check covers every parse site in the package, the client and
sites added later included: each `ParseFromString` / `MergeFromString` / `MergeFrom`
must parse into a message built in the same function (a local name assigned from a
call), and `X.FromString(...)` builds a fresh one by itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lars

PARSE = {"ParseFromString", "MergeFromString", "MergeFrom"}
ROOT = Path(lars.__file__).resolve().parent


def fresh_locals(fn: ast.AST) -> set[str]:
    """Names the function assigns from a call (a message it builds itself)."""
    names: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.target, ast.Name)
        ):
            names.add(node.target.id)
    return names


def reused_parses(tree: ast.AST) -> list[tuple[int, str]]:
    bad: list[tuple[int, str]] = []
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inside: set[int] = set()
    for fn in functions:
        fresh = fresh_locals(fn)
        for node in ast.walk(fn):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in PARSE:
                continue
            inside.add(id(node))
            receiver = node.func.value
            if not (isinstance(receiver, ast.Name) and receiver.id in fresh):
                bad.append((node.lineno, ast.unparse(node.func)))
    for node in ast.walk(tree):  # module-level parses into a module-level message
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in PARSE
            and id(node) not in inside
        ):
            bad.append((node.lineno, ast.unparse(node.func)))
    return bad


def test_every_parse_site_parses_into_a_fresh_message() -> None:
    sites = 0
    bad: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.name.endswith("_pb2.py"):
            continue
        source = path.read_text(encoding="utf-8")
        if not any(name in source for name in PARSE | {"FromString"}):
            continue
        tree = ast.parse(source)
        sites += sum(
            1
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in PARSE | {"FromString"}
        )
        bad += [
            f"{path.relative_to(ROOT.parent)}:{line}: {call}" for line, call in reused_parses(tree)
        ]
    assert sites >= 6, sites  # agent, route client, dns, reporter, client: the check sees them
    assert bad == [], "parses into a message kept across messages:\n" + "\n".join(bad)


def test_the_check_catches_a_reused_message() -> None:
    reused = ast.parse(
        "class E:\n"
        "    def __init__(self):\n"
        "        self.req = pb.GetHostRequest()\n"
        "    def on(self, data):\n"
        "        req = self.req\n"
        "        req.ParseFromString(data)\n"
        "        self.req.MergeFromString(data)\n"
        "MSG = pb.GetHostRequest()\n"
        "MSG.ParseFromString(b'')\n"
    )
    lines = [line for line, _ in reused_parses(reused)]
    assert lines == [6, 7, 9]
    fresh = ast.parse(
        "def on(data):\n"
        "    req = pb.GetHostRequest()\n"
        "    req.ParseFromString(data)\n"
        "    return pb.GetHostRequest.FromString(data)\n"
    )
    assert reused_parses(fresh) == []
