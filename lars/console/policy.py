"""Which role each console route needs: one declared table, enforced by the middleware.

Every route of the app (JSON API and pages) must appear here: a route without an entry
needs admin (closed by default), and tests/unit/test_console_roles.py fails, so a new
endpoint cannot ship without a decision. PUBLIC routes answer without credentials.

viewer: every read; editor: route edits (modules, hosts, drain, weight, descriptions);
admin: accounts, tokens, and releasing or restoring a held table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from starlette.routing import compile_path

from lars.accounts import Role

__all__ = ["POLICY", "PUBLIC", "STATIC", "Policy", "Requirement", "route_keys"]


class _Public:
    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC: Final = _Public()
Requirement = Role | _Public

STATIC = "/static"
V, E, A = Role.VIEWER, Role.EDITOR, Role.ADMIN
_M = "/modules/{modid}/{cmdid}"
_H = "/modules/{modid}/{cmdid}/hosts/{ip}/{port}"

POLICY: Mapping[tuple[str, str], Requirement] = {
    # Public: health, metrics, logging in, static files
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/api/login"): PUBLIC,
    ("GET", STATIC): PUBLIC,
    # Anyone logged in
    ("POST", "/logout"): V,
    ("POST", "/api/logout"): V,
    ("GET", "/api/session"): V,
    ("GET", "/api/openapi.json"): V,
    # JSON API: reads
    ("GET", "/api/modules"): V,
    ("GET", f"/api{_M}"): V,
    ("GET", "/api/versions"): V,
    ("GET", "/api/history"): V,
    ("GET", "/api/hold"): V,
    # JSON API: route edits
    ("POST", "/api/modules"): E,
    ("DELETE", f"/api{_M}"): E,
    ("PUT", f"/api{_M}/descriptions"): E,
    ("POST", f"/api{_M}/hosts"): E,
    ("PUT", f"/api{_H}"): E,
    ("DELETE", f"/api{_H}"): E,
    ("POST", f"/api{_H}/drain"): E,
    ("POST", f"/api{_H}/undrain"): E,
    ("PUT", f"/api{_H}/weight"): E,
    # JSON API: held tables, accounts, tokens
    ("POST", "/api/hold/release"): A,
    ("POST", "/api/hold/restore"): A,
    ("GET", "/api/accounts"): A,
    ("POST", "/api/users"): A,
    ("DELETE", "/api/users/{name}"): A,
    ("PUT", "/api/users/{name}/password"): A,
    ("PUT", "/api/users/{name}/role"): A,
    ("POST", "/api/tokens"): A,
    ("DELETE", "/api/tokens/{name}"): A,
    # Pages: reads
    ("GET", "/"): V,
    ("GET", "/modules.part"): V,
    ("GET", _M): V,
    ("GET", f"{_M}/hosts.part"): V,
    ("GET", "/versions"): V,
    ("GET", "/versions.part"): V,
    ("GET", "/history"): V,
    ("GET", "/hold.part"): V,
    # Pages: route edits
    ("POST", "/modules"): E,
    ("POST", f"{_M}/hosts"): E,
    ("POST", f"{_M}/hosts/edit"): E,
    ("POST", f"{_M}/hosts/delete"): E,
    ("POST", f"{_M}/hosts/drain"): E,
    ("POST", f"{_M}/hosts/undrain"): E,
    ("POST", f"{_M}/hosts/weight"): E,
    ("POST", f"{_M}/descriptions"): E,
    ("POST", f"{_M}/delete"): E,
    # Pages: held tables, accounts
    ("POST", "/hold/release"): A,
    ("POST", "/hold/restore"): A,
    ("GET", "/accounts"): A,
    ("POST", "/accounts/users"): A,
    ("POST", "/accounts/users/delete"): A,
    ("POST", "/accounts/users/password"): A,
    ("POST", "/accounts/users/role"): A,
    ("POST", "/accounts/tokens"): A,
    ("POST", "/accounts/tokens/revoke"): A,
}


class Policy:
    """POLICY compiled for matching request paths (Starlette's path syntax), so the gate
    needs no router internals and runs before routing, body parsing and validation."""

    def __init__(self, table: Mapping[tuple[str, str], Requirement] = POLICY) -> None:
        self._table = table
        self._compiled = [
            (method, compile_path(path)[0], need) for (method, path), need in table.items()
        ]

    def required(self, method: str, path: str) -> Requirement:
        """What a request needs. HEAD goes with GET; static files are public; a path or
        method declared nowhere (a 404 or 405 follows, or a route someone forgot to
        declare) needs admin: closed by default."""
        if path == STATIC or path.startswith(STATIC + "/"):
            return PUBLIC
        method = "GET" if method == "HEAD" else method
        for declared_method, regex, need in self._compiled:
            if declared_method == method and regex.match(path):
                return need
        return Role.ADMIN


def route_keys(routes: Iterable[object]) -> list[tuple[str, str]]:
    """The (method, path) POLICY keys of route-like objects with .path and .methods (HEAD
    goes with GET; a mount of static files counts as GET)."""
    keys = []
    for route in routes:
        path = getattr(route, "path", None)
        if path is None:
            continue
        methods = getattr(route, "methods", None) or {"GET"}
        keys += [(m, path) for m in sorted(set(methods) - {"HEAD"}) or ["GET"]]
    return keys
