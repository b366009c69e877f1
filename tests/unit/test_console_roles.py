"""Every console route against every role, from the one declared policy (lars/console/policy.py).

The JSON API is walked from its own OpenAPI schema: each path x method x credential (none,
viewer, editor, admin token) must give 401 without credentials, 403 below the declared
role and 2xx at or above it, each on a fresh copy of the same seeded database. A route added
without a declared role, or an API operation without an example here, fails this file.
Pages are checked the same way with session cookies (login form, CSRF-carrying forms).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient

from lars.accounts import AccountStore, Role
from lars.console import build_console
from lars.console.policy import POLICY, PUBLIC, Policy, Requirement, route_keys
from lars.dbengine import init_schema, make_engine
from lars.protocol import dotted_to_uint
from lars.routes.admin import RouteAdmin
from lars.routes.guardstate import GuardState, HeldInfo, write_state

PASSWORD = "roles-password-1"
USER_PASSWORD = "user-password-1"
ROLES: list[Role | None] = [None, Role.VIEWER, Role.EDITOR, Role.ADMIN]
_M = "/api/modules/1/1"
_H = "/api/modules/1/1/hosts/10.0.0.1/80"

# One concrete request per API operation: (path, JSON body). An operation missing here
# fails test_every_api_operation_has_an_example: add one that succeeds on the seed below.
EXAMPLES: dict[tuple[str, str], tuple[str, Any]] = {
    ("POST", "/api/login"): ("/api/login", {"password": PASSWORD}),
    ("POST", "/api/logout"): ("/api/logout", None),
    ("GET", "/api/session"): ("/api/session", None),
    ("GET", "/api/modules"): ("/api/modules", None),
    ("POST", "/api/modules"): (
        "/api/modules",
        {"modid": 2, "cmdid": 2, "ip": "10.0.0.9", "port": 80},
    ),
    ("GET", "/api/modules/{modid}/{cmdid}"): (_M, None),
    ("DELETE", "/api/modules/{modid}/{cmdid}"): (_M, None),
    ("PUT", "/api/modules/{modid}/{cmdid}/descriptions"): (f"{_M}/descriptions", {"mod_desc": "m"}),
    ("POST", "/api/modules/{modid}/{cmdid}/hosts"): (f"{_M}/hosts", {"ip": "10.0.0.3", "port": 80}),
    ("PUT", "/api/modules/{modid}/{cmdid}/hosts/{ip}/{port}"): (_H, {"ip": "10.0.0.4", "port": 81}),
    ("DELETE", "/api/modules/{modid}/{cmdid}/hosts/{ip}/{port}"): (_H, None),
    ("POST", "/api/modules/{modid}/{cmdid}/hosts/{ip}/{port}/drain"): (
        f"{_H}/drain",
        {"force": True},
    ),
    ("POST", "/api/modules/{modid}/{cmdid}/hosts/{ip}/{port}/undrain"): (
        "/api/modules/1/1/hosts/10.0.0.2/80/undrain",
        {},
    ),
    ("PUT", "/api/modules/{modid}/{cmdid}/hosts/{ip}/{port}/weight"): (
        f"{_H}/weight",
        {"weight": 3},
    ),
    ("GET", "/api/versions"): ("/api/versions", None),
    ("GET", "/api/history"): ("/api/history", None),
    ("GET", "/api/hold"): ("/api/hold", None),
    ("POST", "/api/hold/release"): ("/api/hold/release", None),
    ("POST", "/api/hold/restore"): ("/api/hold/restore", None),
    ("GET", "/api/accounts"): ("/api/accounts", None),
    ("POST", "/api/users"): (
        "/api/users",
        {"name": "bob", "role": "viewer", "password": "pw-for-bob-1"},
    ),
    ("DELETE", "/api/users/{name}"): ("/api/users/spare-user", None),
    ("PUT", "/api/users/{name}/password"): (
        "/api/users/spare-user/password",
        {"password": "new-pass-12"},
    ),
    ("PUT", "/api/users/{name}/role"): ("/api/users/spare-user/role", {"role": "editor"}),
    ("POST", "/api/tokens"): ("/api/tokens", {"name": "fresh", "role": "viewer"}),
    ("DELETE", "/api/tokens/{name}"): ("/api/tokens/spare-token", None),
}


@dataclass
class Seed:
    db: Path
    tokens: dict[Role, str]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """One seeded database, copied fresh for every request that may change it."""
    db = tmp_path_factory.mktemp("roles") / "seed.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        init_schema(engine)
        admin = RouteAdmin(engine)
        for ip in ("10.0.0.1", "10.0.0.2"):
            admin.add_host(1, 1, ip, 80)
        admin.drain(1, 1, "10.0.0.2", 80, note=None, force=False)
        admin.audit.append([admin.audit.row(actor="dns", action="hold", version=1, detail="d")])
        # what a holding route service saves (issue 18): the table restore writes back
        served = {(1, 1): ((dotted_to_uint("10.0.0.1"), 80, 1),)}
        held = HeldInfo(1, 0.0, None, "drop", "d", "", 0, 0)
        write_state(engine, GuardState(0.0, "dns test", 1, 0.0, served, held=held))
        store = AccountStore(engine)
        tokens = {role: store.create_token(f"t-{role.value}", role, by="test") for role in Role}
        for role in Role:
            store.add_user(f"u-{role.value}", role, USER_PASSWORD, by="test")
        store.add_user("spare-user", Role.VIEWER, USER_PASSWORD, by="test")
        store.create_token("spare-token", Role.VIEWER, by="test")
    finally:
        engine.dispose()
    return Seed(db, tokens)


@pytest.fixture
def fresh(seed: Seed, tmp_path: Path) -> Iterator[TestClient]:
    copy = tmp_path / "copy.db"
    shutil.copy(seed.db, copy)
    engine = make_engine(f"sqlite:///{copy}")
    try:
        with TestClient(build_console(engine, PASSWORD)) as client:
            yield client
    finally:
        engine.dispose()


def _schema_operations() -> list[tuple[str, str]]:
    engine = make_engine("sqlite://")  # the schema needs no database
    try:
        schema = build_console(engine, PASSWORD).openapi()
    finally:
        engine.dispose()
    return sorted(
        (method.upper(), path) for path, item in schema["paths"].items() for method in item
    )


OPERATIONS = _schema_operations()


def _app_route_keys() -> list[tuple[str, str]]:
    engine = make_engine("sqlite://")
    try:
        app = build_console(engine, PASSWORD)
    finally:
        engine.dispose()
    # FastAPI >= 0.160 keeps included routers lazily; iter_route_contexts flattens them.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(flatten(app.routes)) if flatten else list(app.routes)
    return route_keys(routes)


def _expected(need: Requirement, role: Role | None) -> str:
    if need is PUBLIC:
        return "2xx"
    assert isinstance(need, Role)
    if role is None:
        return "401"
    return "2xx" if role.allows(need) else "403"


def _outcome(status: int) -> str:
    return "2xx" if 200 <= status < 300 else str(status)


def test_the_schema_is_walked() -> None:
    assert len(OPERATIONS) >= 25
    assert ("POST", "/api/hold/release") in OPERATIONS


def test_every_route_of_the_app_declares_a_role() -> None:
    keys = _app_route_keys()
    assert len(keys) > 40
    assert sorted(k for k in keys if k not in POLICY) == []


def test_every_declared_policy_names_a_route() -> None:
    keys = set(_app_route_keys())
    assert sorted(k for k in POLICY if k not in keys) == []


def test_every_api_operation_has_an_example() -> None:
    assert sorted(op for op in OPERATIONS if op not in EXAMPLES) == []


def test_an_undeclared_route_is_closed_by_default() -> None:
    policy = Policy({("GET", "/api/x"): Role.VIEWER})
    assert policy.required("GET", "/api/x") == Role.VIEWER
    assert policy.required("HEAD", "/api/x") == Role.VIEWER
    assert policy.required("POST", "/api/x") == Role.ADMIN
    assert policy.required("GET", "/api/new-endpoint") == Role.ADMIN
    assert policy.required("GET", "/static/console.css") is PUBLIC


@dataclass
class Shared:
    """One console on one copy of the seed for every request that changes nothing (reads,
    and refusals, which happen before anything is read): per role a client, logged in
    (cookie + CSRF token) for the pages."""

    clients: dict[Role | None, TestClient]
    csrf: dict[Role, str]


@pytest.fixture(scope="module")
def shared(seed: Seed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    copy = tmp_path_factory.mktemp("shared") / "shared.db"
    shutil.copy(seed.db, copy)
    engine = make_engine(f"sqlite:///{copy}")
    app = build_console(engine, PASSWORD)
    clients: dict[Role | None, TestClient] = {role: TestClient(app) for role in ROLES}
    try:
        csrf = {}
        for role in Role:
            login = {"user": f"u-{role.value}", "password": USER_PASSWORD}
            csrf[role] = clients[role].post("/api/login", json=login).json()["csrf_token"]
        yield Shared(clients, csrf)
    finally:
        for client in clients.values():
            client.close()
        engine.dispose()


def _request(
    client: TestClient, method: str, path: str, body: Any, role: Role | None, seed: Seed
) -> Any:
    headers = {"Authorization": f"Bearer {seed.tokens[role]}"} if role else {}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op[0]} {op[1]}")
def test_each_role_gets_what_the_policy_declares(
    operation: tuple[str, str], seed: Seed, shared: Shared, tmp_path: Path
) -> None:
    method = operation[0]
    path, body = EXAMPLES[operation]
    need = POLICY[operation]
    seen = {}
    expected = {}
    for role in ROLES:
        name = role.value if role else "none"
        expected[name] = _expected(need, role)
        if method == "GET" or expected[name] != "2xx":
            client = shared.clients[None]  # no cookie: the token alone decides
            response = _request(client, method, path, body, role, seed)
        else:  # an edit that should succeed: on a fresh copy, so each role finds the seed
            copy = tmp_path / f"{name}.db"
            shutil.copy(seed.db, copy)
            engine = make_engine(f"sqlite:///{copy}")
            try:
                with TestClient(build_console(engine, PASSWORD)) as client:
                    response = _request(client, method, path, body, role, seed)
            finally:
                engine.dispose()
        seen[name] = (_outcome(response.status_code), response.text)
    assert {k: v[0] for k, v in seen.items()} == expected, seen


def test_the_role_check_comes_before_body_validation(fresh: TestClient, seed: Seed) -> None:
    viewer = {
        "Authorization": f"Bearer {seed.tokens[Role.VIEWER]}",
        "content-type": "application/json",
    }
    for body in (b"{not json", b'{"modid": "x"}'):
        assert fresh.post("/api/modules", content=body, headers=viewer).status_code == 403
        assert fresh.post("/api/modules", content=body).status_code == 401
        bad = {"Authorization": "Bearer lars_nope", "content-type": "application/json"}
        assert fresh.post("/api/modules", content=body, headers=bad).status_code == 401


def test_a_bearer_request_is_judged_by_the_token_alone(fresh: TestClient, seed: Seed) -> None:
    login = fresh.post("/api/login", json={"password": PASSWORD})
    assert login.status_code == 200  # the client now carries an admin session cookie
    assert fresh.get("/api/accounts").status_code == 200
    viewer = {"Authorization": f"Bearer {seed.tokens[Role.VIEWER]}"}
    assert fresh.get("/api/accounts", headers=viewer).status_code == 403
    wrong = fresh.get("/api/accounts", headers={"Authorization": "Bearer lars_wrong"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert fresh.get("/api/modules", headers={"Authorization": "Basic eDp5"}).status_code == 401
    # no CSRF header needed with a token; the session still needs one
    editor = {"Authorization": f"Bearer {seed.tokens[Role.EDITOR]}"}
    body = {"ip": "10.0.0.7", "port": 80}
    assert fresh.post("/api/modules/1/1/hosts", json=body, headers=editor).status_code == 201
    assert fresh.post("/api/modules/1/1/hosts", json=body | {"port": 81}).status_code == 403
    who = fresh.get("/api/session", headers=editor).json()
    assert who == {"csrf_token": "", "user": "t-editor", "role": "editor"}


def test_a_revoked_token_and_a_deleted_user_stop_at_once(fresh: TestClient, seed: Seed) -> None:
    admin = {"Authorization": f"Bearer {seed.tokens[Role.ADMIN]}"}
    made = fresh.post("/api/tokens", json={"name": "ci", "role": "editor"}, headers=admin)
    assert made.status_code == 201
    ci = {"Authorization": f"Bearer {made.json()['token']}"}
    assert fresh.get("/api/modules", headers=ci).status_code == 200
    assert fresh.delete("/api/tokens/ci", headers=admin).status_code == 204
    assert fresh.get("/api/modules", headers=ci).status_code == 401
    # a logged-in user whose account is deleted is logged out at the next request
    session = fresh.post("/api/login", json={"user": "u-editor", "password": USER_PASSWORD})
    assert session.json()["role"] == "editor"
    assert fresh.get("/api/modules").status_code == 200
    assert fresh.delete("/api/users/u-editor", headers=admin).status_code == 204
    assert fresh.get("/api/modules").status_code == 401


def test_a_role_change_applies_at_the_next_request(fresh: TestClient, seed: Seed) -> None:
    admin = {"Authorization": f"Bearer {seed.tokens[Role.ADMIN]}"}
    session = fresh.post("/api/login", json={"user": "u-viewer", "password": USER_PASSWORD})
    csrf = {"X-CSRF-Token": session.json()["csrf_token"]}
    body = {"ip": "10.0.0.8", "port": 80}
    assert fresh.post("/api/modules/1/1/hosts", json=body, headers=csrf).status_code == 403
    put = fresh.put("/api/users/u-viewer/role", json={"role": "editor"}, headers=admin)
    assert put.status_code == 204
    assert fresh.post("/api/modules/1/1/hosts", json=body, headers=csrf).status_code == 201


# Pages: GET with the session; POST forms with the session's CSRF token.

PAGE_EXAMPLES: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("POST", "/modules"): (
        "/modules",
        {"modid": "3", "cmdid": "3", "ip": "10.0.0.5", "port": "80"},
    ),
    ("POST", "/modules/{modid}/{cmdid}/hosts"): (
        "/modules/1/1/hosts",
        {"ip": "10.0.0.6", "port": "80"},
    ),
    ("POST", "/modules/{modid}/{cmdid}/hosts/edit"): (
        "/modules/1/1/hosts/edit",
        {"old_ip": "10.0.0.1", "old_port": "80", "ip": "10.0.0.1", "port": "82"},
    ),
    ("POST", "/modules/{modid}/{cmdid}/hosts/delete"): (
        "/modules/1/1/hosts/delete",
        {"ip": "10.0.0.1", "port": "80"},
    ),
    ("POST", "/modules/{modid}/{cmdid}/hosts/drain"): (
        "/modules/1/1/hosts/drain",
        {"ip": "10.0.0.1", "port": "80", "force": "1"},
    ),
    ("POST", "/modules/{modid}/{cmdid}/hosts/undrain"): (
        "/modules/1/1/hosts/undrain",
        {"ip": "10.0.0.2", "port": "80"},
    ),
    ("POST", "/modules/{modid}/{cmdid}/hosts/weight"): (
        "/modules/1/1/hosts/weight",
        {"ip": "10.0.0.1", "port": "80", "weight": "2"},
    ),
    ("POST", "/modules/{modid}/{cmdid}/descriptions"): (
        "/modules/1/1/descriptions",
        {"mod_desc": "x", "cmd_desc": "y"},
    ),
    ("POST", "/modules/{modid}/{cmdid}/delete"): ("/modules/1/1/delete", {}),
    ("POST", "/hold/release"): ("/hold/release", {}),
    ("POST", "/hold/restore"): ("/hold/restore", {}),
    ("POST", "/accounts/users"): (
        "/accounts/users",
        {"name": "carol", "role": "viewer", "password": "pw-carol-12"},
    ),
    ("POST", "/accounts/users/delete"): ("/accounts/users/delete", {"name": "spare-user"}),
    ("POST", "/accounts/users/password"): (
        "/accounts/users/password",
        {"name": "spare-user", "password": "pw-spare-12"},
    ),
    ("POST", "/accounts/users/role"): (
        "/accounts/users/role",
        {"name": "spare-user", "role": "admin"},
    ),
    ("POST", "/accounts/tokens"): ("/accounts/tokens", {"name": "page-token", "role": "viewer"}),
    ("POST", "/accounts/tokens/revoke"): ("/accounts/tokens/revoke", {"name": "spare-token"}),
    ("POST", "/logout"): ("/logout", {}),
}
PAGE_GETS = {
    "/": "/",
    "/modules.part": "/modules.part",
    "/modules/{modid}/{cmdid}": "/modules/1/1",
    "/modules/{modid}/{cmdid}/hosts.part": "/modules/1/1/hosts.part",
    "/versions": "/versions",
    "/versions.part": "/versions.part",
    "/history": "/history",
    "/hold.part": "/hold.part",
    "/accounts": "/accounts",
}
PAGE_KEYS = sorted(
    k
    for k in POLICY
    if not k[1].startswith("/api/") and POLICY[k] is not PUBLIC and k[1] != "/static"
)


def test_every_page_has_an_example() -> None:
    missing = [
        k for k in PAGE_KEYS if k not in PAGE_EXAMPLES and not (k[0] == "GET" and k[1] in PAGE_GETS)
    ]
    assert missing == []


@pytest.mark.parametrize("key", PAGE_KEYS, ids=lambda k: f"{k[0]} {k[1]}")
def test_each_role_reaches_the_pages_the_policy_allows(
    key: tuple[str, str], seed: Seed, shared: Shared, tmp_path: Path
) -> None:
    need = POLICY[key]
    assert isinstance(need, Role)
    for role in Role:
        if key[0] == "GET":
            response = shared.clients[role].get(PAGE_GETS[key[1]], follow_redirects=False)
        elif not role.allows(need):
            path, fields = PAGE_EXAMPLES[key]
            data = fields | {"csrf": shared.csrf[role]}
            response = shared.clients[role].post(path, data=data, follow_redirects=False)
        else:  # an edit that should succeed: on a fresh copy of the seed
            copy = tmp_path / f"{role.value}.db"
            shutil.copy(seed.db, copy)
            engine = make_engine(f"sqlite:///{copy}")
            try:
                with TestClient(build_console(engine, PASSWORD)) as client:
                    login = {"user": f"u-{role.value}", "password": USER_PASSWORD}
                    csrf = client.post("/api/login", json=login).json()["csrf_token"]
                    path, fields = PAGE_EXAMPLES[key]
                    data = fields | {"csrf": csrf}
                    response = client.post(path, data=data, follow_redirects=False)
            finally:
                engine.dispose()
        if role.allows(need):
            assert response.status_code in (200, 201, 303), (role, response.text[:500])
        else:
            assert response.status_code == 403, (role, response.status_code)


def test_without_a_bootstrap_password_the_last_admin_stays(seed: Seed, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(seed.db, copy)
    engine = make_engine(f"sqlite:///{copy}")
    try:
        with TestClient(build_console(engine, "")) as client:  # u-admin lets it start
            assert client.post("/api/login", json={"password": PASSWORD}).status_code == 401
            admin = {"Authorization": f"Bearer {seed.tokens[Role.ADMIN]}"}
            refused = client.delete("/api/users/u-admin", headers=admin)
            assert refused.status_code == 409 and "last admin" in refused.json()["detail"]
            demote = client.put("/api/users/u-admin/role", json={"role": "viewer"}, headers=admin)
            assert demote.status_code == 409
            new = {"name": "ada", "role": "admin", "password": "ada-password-1"}
            assert client.post("/api/users", json=new, headers=admin).status_code == 201
            assert client.delete("/api/users/u-admin", headers=admin).status_code == 204
    finally:
        engine.dispose()
