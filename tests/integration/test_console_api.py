"""The console's JSON API over Starlette's TestClient: every endpoint, bad input, no session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select
from starlette.testclient import TestClient

from lars.console import build_console
from lars.db import modid_config, route_change, route_data, server_call_status
from lars.dbengine import init_schema, make_engine
from lars.protocol.ipv4 import dotted_to_uint
from lars.routes.admin import RouteAdmin

PASSWORD = "test-password-1"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def anon(engine: Engine, clock: Clock) -> Iterator[TestClient]:
    app = build_console(engine, PASSWORD, clock=clock, stale_after=60.0)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(anon: TestClient) -> TestClient:
    """A logged-in client that sends the CSRF header on every request."""
    response = anon.post("/api/login", json={"password": PASSWORD})
    assert response.status_code == 200
    anon.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return anon


def add_status(
    engine: Engine,
    modid: int,
    cmdid: int,
    ip: str,
    port: int,
    caller: str,
    succ: int,
    err: int,
    ts: float,
    overload: bool = False,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(server_call_status).values(
                modid=modid,
                cmdid=cmdid,
                ip=dotted_to_uint(ip),
                port=port,
                caller=dotted_to_uint(caller),
                succ_cnt=succ,
                err_cnt=err,
                ts=int(ts),
                overload="1" if overload else "0",
            )
        )


# Authentication


PROTECTED = [
    ("GET", "/api/session"),
    ("GET", "/api/modules"),
    ("POST", "/api/modules"),
    ("GET", "/api/modules/1/1"),
    ("DELETE", "/api/modules/1/1"),
    ("PUT", "/api/modules/1/1/descriptions"),
    ("POST", "/api/modules/1/1/hosts"),
    ("PUT", "/api/modules/1/1/hosts/10.0.0.1/80"),
    ("DELETE", "/api/modules/1/1/hosts/10.0.0.1/80"),
    ("GET", "/api/versions"),
    ("GET", "/api/openapi.json"),
    ("GET", "/modules.part"),
    ("GET", "/modules/1/1/hosts.part"),
    ("GET", "/versions.part"),
    ("POST", "/modules"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_without_a_session_the_api_answers_401(anon: TestClient, method: str, path: str) -> None:
    response = anon.request(method, path, json={})
    assert response.status_code == 401
    assert response.json() == {"detail": "not logged in"}


@pytest.mark.parametrize("path", ["/", "/versions", "/modules/1/1"])
def test_without_a_session_pages_redirect_to_login(anon: TestClient, path: str) -> None:
    response = anon.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_public_paths_answer_without_a_session(anon: TestClient) -> None:
    assert anon.get("/login").status_code == 200
    assert anon.get("/static/console.css").status_code == 200
    assert anon.get("/static/console.js").status_code == 200
    health = anon.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert anon.get("/static/nope.css").status_code == 404


def test_login_sets_an_httponly_samesite_cookie(anon: TestClient) -> None:
    response = anon.post("/api/login", json={"password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "lars_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert anon.get("/api/session").json()["csrf_token"] == response.json()["csrf_token"]


@pytest.mark.parametrize("body", [{"password": "wrong-password"}, {"password": ""}])
def test_wrong_password_is_401(anon: TestClient, body: dict[str, str]) -> None:
    response = anon.post("/api/login", json=body)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert anon.get("/api/modules").status_code == 401


@pytest.mark.parametrize(
    "body", [{}, {"password": 5}, {"password": "x", "role": "admin"}, {"user": 5, "password": "x"}]
)
def test_malformed_login_is_422(anon: TestClient, body: object) -> None:
    assert anon.post("/api/login", json=body).status_code == 422


def test_login_is_throttled_after_repeated_failures(anon: TestClient, clock: Clock) -> None:
    for _ in range(5):
        assert anon.post("/api/login", json={"password": "guess-guess"}).status_code == 401
        clock.now += 1.0
    # Even the right password is refused while the client is throttled, and the answer
    # says so (429, as the schema declares), with the wait: it was 401 like a bad password.
    throttled = anon.post("/api/login", json={"password": PASSWORD})
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "55"  # the first failure leaves at +60 s
    assert "set-cookie" not in throttled.headers
    assert "too many failed logins" in throttled.json()["detail"]
    clock.now = NOW + 60.0
    assert anon.post("/api/login", json={"password": PASSWORD}).status_code == 200


def test_unsafe_methods_need_the_csrf_header(client: TestClient) -> None:
    token = client.headers.pop("X-CSRF-Token")
    body = {"modid": 1, "cmdid": 1, "ip": "10.0.0.1", "port": 80}
    response = client.post("/api/modules", json=body)
    assert response.status_code == 403
    client.headers["X-CSRF-Token"] = "forged"
    assert client.post("/api/modules", json=body).status_code == 403
    client.headers["X-CSRF-Token"] = token
    assert client.post("/api/modules", json=body).status_code == 201


def test_logout_ends_the_session(client: TestClient) -> None:
    assert client.post("/api/logout").status_code == 204
    assert client.get("/api/modules").status_code == 401


def test_session_expires(client: TestClient, clock: Clock) -> None:
    clock.now += 9 * 3600
    assert client.get("/api/modules").status_code == 401


def test_openapi_schema_is_served(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/modules/{modid}/{cmdid}/hosts/{ip}/{port}" in schema["paths"]


# Modules and hosts


def test_add_module_list_and_get(client: TestClient, engine: Engine) -> None:
    body = {
        "modid": 5,
        "cmdid": 7,
        "ip": "10.0.0.1",
        "port": 8080,
        "mod_desc": "users",
        "cmd_desc": "get profile",
    }
    created = client.post("/api/modules", json=body)
    assert created.status_code == 201
    version = created.json()["version"]
    assert version >= NOW
    [module] = client.get("/api/modules").json()
    assert module == {
        "modid": 5,
        "cmdid": 7,
        "mod_desc": "users",
        "cmd_desc": "get profile",
        "health": {
            "hosts": 1,
            "ok": 0,
            "overloaded": 0,
            "stale": 0,
            "nodata": 1,
            "state": "nodata",
            "drained": 0,
        },
    }
    detail = client.get("/api/modules/5/7").json()
    assert [(h["ip"], h["port"], h["state"]) for h in detail["hosts"]] == [
        ("10.0.0.1", 8080, "nodata")
    ]
    with engine.connect() as conn:
        assert conn.execute(select(route_change.c.modid, route_change.c.version)).all() == [
            (5, version)
        ]


def test_add_existing_module_is_409_with_the_field(client: TestClient) -> None:
    body = {"modid": 5, "cmdid": 7, "ip": "10.0.0.1", "port": 8080}
    assert client.post("/api/modules", json=body).status_code == 201
    response = client.post("/api/modules", json={**body, "ip": "10.0.0.2"})
    assert response.status_code == 409
    assert "already exists" in response.json()["fields"]["cmdid"]


@pytest.mark.parametrize(
    "patch",
    [
        {"modid": -1},
        {"modid": 2**31},
        {"cmdid": "1"},
        {"ip": "10.0.0"},
        {"ip": "010.0.0.1"},
        {"ip": "300.0.0.1"},
        {"port": 0},
        {"port": 65536},
        {"port": True},
        {"mod_desc": "x" * 256},
        {"cmd_desc": "bell\x07"},
        {"extra": 1},
    ],
)
def test_bad_module_input_is_422_naming_the_field(
    client: TestClient, patch: dict[str, object]
) -> None:
    body = {"modid": 1, "cmdid": 1, "ip": "10.0.0.1", "port": 80, **patch}
    response = client.post("/api/modules", json=body)
    assert response.status_code == 422
    [field] = patch
    assert any(err["loc"][-1] == field for err in response.json()["detail"])
    assert client.get("/api/modules").json() == []


def test_bad_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/api/modules", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_add_edit_delete_host(client: TestClient, engine: Engine) -> None:
    client.post("/api/modules", json={"modid": 1, "cmdid": 2, "ip": "10.0.0.1", "port": 80})
    added = client.post("/api/modules/1/2/hosts", json={"ip": "10.0.0.2", "port": 81})
    assert added.status_code == 201
    dup = client.post("/api/modules/1/2/hosts", json={"ip": "10.0.0.2", "port": 81})
    assert dup.status_code == 409 and "already" in dup.json()["detail"]
    moved = client.put("/api/modules/1/2/hosts/10.0.0.2/81", json={"ip": "10.0.0.3", "port": 82})
    assert moved.status_code == 200
    assert moved.json()["version"] > added.json()["version"]
    clash = client.put("/api/modules/1/2/hosts/10.0.0.3/82", json={"ip": "10.0.0.1", "port": 80})
    assert clash.status_code == 409
    same = client.put("/api/modules/1/2/hosts/10.0.0.3/82", json={"ip": "10.0.0.3", "port": 82})
    assert same.status_code == 200
    missing = client.put("/api/modules/1/2/hosts/10.0.0.9/82", json={"ip": "10.0.0.4", "port": 1})
    assert missing.status_code == 404
    assert client.delete("/api/modules/1/2/hosts/10.0.0.3/82").status_code == 200
    assert client.delete("/api/modules/1/2/hosts/10.0.0.3/82").status_code == 404
    routes = RouteAdmin(engine).list_routes(1, 2)
    assert [(r.ip, r.port) for r in routes] == [("10.0.0.1", 80)]


def test_adding_a_host_to_a_new_module_creates_it(client: TestClient) -> None:
    assert (
        client.post("/api/modules/9/9/hosts", json={"ip": "1.2.3.4", "port": 5}).status_code == 201
    )
    assert client.get("/api/modules/9/9").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/modules/x/1",
        "/api/modules/-1/1",
        "/api/modules/1/2147483648",
        "/api/modules/1/1/hosts/10.0.0.256/80/",
        "/api/modules/1/1/hosts/1.2.3.4/0",
    ],
)
def test_bad_path_parameters(client: TestClient, path: str) -> None:
    assert client.get(path).status_code in (404, 405, 422)
    assert client.delete(path).status_code in (404, 422)


@pytest.mark.parametrize("body", [{"ip": "a.b.c.d", "port": 1}, {"ip": "1.2.3.4"}, {}, []])
def test_bad_host_body_is_422(client: TestClient, body: object) -> None:
    assert client.post("/api/modules/1/1/hosts", json=body).status_code == 422


def test_unknown_module_is_404(client: TestClient) -> None:
    assert client.get("/api/modules/1/1").status_code == 404
    assert client.delete("/api/modules/1/1").status_code == 404
    assert client.delete("/api/modules/1/1/hosts/1.2.3.4/5").status_code == 404


def test_delete_module(client: TestClient, engine: Engine) -> None:
    client.post("/api/modules", json={"modid": 1, "cmdid": 2, "ip": "10.0.0.1", "port": 80})
    client.post("/api/modules/1/2/hosts", json={"ip": "10.0.0.2", "port": 80})
    deleted = client.delete("/api/modules/1/2")
    assert deleted.status_code == 200
    assert client.get("/api/modules").json() == []
    with engine.connect() as conn:
        assert conn.execute(select(route_data)).all() == []


def test_descriptions_are_upserted(client: TestClient, engine: Engine) -> None:
    client.post("/api/modules", json={"modid": 1, "cmdid": 2, "ip": "10.0.0.1", "port": 80})
    url = "/api/modules/1/2/descriptions"
    assert client.put(url, json={"mod_desc": "users", "cmd_desc": "login"}).status_code == 204
    assert client.put(url, json={"mod_desc": "user service"}).status_code == 204
    module = client.get("/api/modules/1/2").json()
    assert (module["mod_desc"], module["cmd_desc"]) == ("user service", "")
    with engine.connect() as conn:
        assert len(conn.execute(select(modid_config)).all()) == 1
    lone_surrogate = b'{"mod_desc": "\\ud800"}'
    headers = {"content-type": "application/json"}
    assert client.put(url, content=lone_surrogate, headers=headers).status_code == 422
    assert client.put(url, json={"mod_desc": "ok", "other": 1}).status_code == 422


def test_search_and_state_filter(client: TestClient, engine: Engine) -> None:
    for modid, cmdid, desc in ((1, 1, "users"), (1, 2, "orders"), (12, 3, "billing")):
        body = {"modid": modid, "cmdid": cmdid, "ip": "10.0.0.1", "port": 80, "mod_desc": desc}
        client.post("/api/modules", json=body)
    add_status(engine, 1, 2, "10.0.0.1", 80, "192.168.1.1", 5, 5, NOW, overload=True)

    def ids(**params: str) -> list[tuple[int, int]]:
        return [(m["modid"], m["cmdid"]) for m in client.get("/api/modules", params=params).json()]

    assert ids() == [(1, 1), (1, 2), (12, 3)]
    assert ids(q="1") == [(1, 1), (1, 2), (12, 3)]
    assert ids(q="1:2") == [(1, 2)]
    assert ids(q="12/3") == [(12, 3)]
    assert ids(q="BILL") == [(12, 3)]
    assert ids(q="nothing") == []
    assert ids(state="overload") == [(1, 2)]
    assert ids(state="nodata") == [(1, 1), (12, 3)]
    assert client.get("/api/modules", params={"state": "bogus"}).status_code == 422
    assert client.get("/api/modules", params={"q": "x" * 101}).status_code == 422


# Health


def test_host_health_from_call_status(client: TestClient, engine: Engine, clock: Clock) -> None:
    client.post("/api/modules", json={"modid": 3, "cmdid": 4, "ip": "10.0.0.1", "port": 80})
    client.post("/api/modules/3/4/hosts", json={"ip": "10.0.0.2", "port": 80})
    client.post("/api/modules/3/4/hosts", json={"ip": "10.0.0.3", "port": 80})
    add_status(engine, 3, 4, "10.0.0.1", 80, "192.168.1.10", 90, 10, NOW - 5)
    add_status(engine, 3, 4, "10.0.0.1", 80, "192.168.1.11", 10, 0, NOW - 2)
    add_status(engine, 3, 4, "10.0.0.2", 80, "192.168.1.10", 1, 9, NOW - 1, overload=True)
    add_status(engine, 3, 4, "10.0.0.3", 80, "192.168.1.10", 5, 0, NOW - 600)
    add_status(engine, 3, 4, "10.0.0.99", 80, "192.168.1.10", 1, 0, NOW)
    module = client.get("/api/modules/3/4").json()
    hosts = {h["ip"]: h for h in module["hosts"]}
    one = hosts["10.0.0.1"]
    assert (one["succ"], one["err"], one["state"], one["age"]) == (100, 10, "ok", 2.0)
    assert one["error_rate"] == pytest.approx(10 / 110)
    assert one["callers"] == ["192.168.1.10", "192.168.1.11"]
    assert one["last_report"] == int(NOW - 2)
    assert hosts["10.0.0.2"]["overload"] and hosts["10.0.0.2"]["state"] == "overload"
    assert hosts["10.0.0.3"]["stale"] and hosts["10.0.0.3"]["state"] == "stale"
    assert not hosts["10.0.0.99"]["in_route"]
    assert module["health"] == {
        "hosts": 3,
        "ok": 1,
        "overloaded": 1,
        "stale": 1,
        "nodata": 0,
        "state": "overload",
        "drained": 0,
    }
    clock.now += 120
    module = client.get("/api/modules/3/4").json()
    # Every report is old now: the overloaded host reads stale too (it stayed red).
    assert (module["health"]["stale"], module["health"]["overloaded"]) == (3, 0)
    overloaded_before = {h["ip"]: h for h in module["hosts"]}["10.0.0.2"]
    assert overloaded_before["overload"] and overloaded_before["state"] == "stale"
    assert module["health"]["state"] == "stale"


def test_module_with_only_reports_is_shown(client: TestClient, engine: Engine) -> None:
    add_status(engine, 8, 8, "10.0.0.1", 80, "192.168.1.10", 1, 0, NOW)
    module = client.get("/api/modules/8/8").json()
    assert module["health"]["hosts"] == 0 and len(module["hosts"]) == 1


# Versions


def test_versions_and_pending_changes(client: TestClient) -> None:
    assert client.get("/api/versions").json() == {"version": 0, "pending": []}
    v1 = client.post("/api/modules", json={"modid": 1, "cmdid": 1, "ip": "1.1.1.1", "port": 1})
    v2 = client.post("/api/modules/2/2/hosts", json={"ip": "1.1.1.1", "port": 1})
    versions = client.get("/api/versions").json()
    assert versions["version"] == v2.json()["version"] > v1.json()["version"]
    assert versions["pending"] == [
        {"modid": 1, "cmdid": 1, "version": v1.json()["version"]},
        {"modid": 2, "cmdid": 2, "version": v2.json()["version"]},
    ]


# Database down


def test_database_down_is_503_not_a_crash(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'lars.db'}")
    app = build_console(engine, PASSWORD)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 503
        token = client.post("/api/login", json={"password": PASSWORD}).json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        assert client.get("/api/modules").status_code == 503
        assert client.get("/api/modules").json() == {"detail": "database unavailable"}
        body = {"modid": 1, "cmdid": 1, "ip": "1.1.1.1", "port": 1}
        assert client.post("/api/modules", json=body).status_code == 503
        page = client.get("/")
        assert page.status_code == 503 and "database is unavailable" in page.text
    engine.dispose()


@pytest.mark.mysql
def test_api_on_mariadb(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    init_schema(engine)
    try:
        with TestClient(build_console(engine, PASSWORD)) as client:
            token = client.post("/api/login", json={"password": PASSWORD}).json()["csrf_token"]
            client.headers["X-CSRF-Token"] = token
            body = {
                "modid": 1,
                "cmdid": 2,
                "ip": "192.168.1.177",
                "port": 9000,
                "mod_desc": "ünïcødé ✓",
            }
            assert client.post("/api/modules", json=body).status_code == 201
            add_status(engine, 1, 2, "192.168.1.177", 9000, "255.255.255.254", 3, 1, NOW, True)
            module = client.get("/api/modules/1/2").json()
            assert module["mod_desc"] == "ünïcødé ✓"
            [host] = module["hosts"]
            assert host["callers"] == ["255.255.255.254"] and host["overload"]
            assert client.delete("/api/modules/1/2").status_code == 200
            assert client.get("/api/versions").json()["pending"][-1]["modid"] == 1
    finally:
        engine.dispose()


def test_responses_carry_browser_hardening_headers(client: TestClient) -> None:
    for path in ("/", "/api/modules", "/login"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
    assert "cache-control" not in client.get("/static/console.css").headers


@pytest.mark.mysql
def test_mariadb_outage_is_503_and_the_console_recovers(mysql_url: str) -> None:
    from sqlalchemy.engine import make_url

    from tests.proxy import CuttableProxy

    direct = make_engine(mysql_url)
    init_schema(direct)
    RouteAdmin(direct).add_host(1, 1, "10.0.0.1", 80)
    target = make_url(mysql_url)
    with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
        via = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(via)
        try:
            with TestClient(build_console(engine, PASSWORD)) as client:
                token = client.post("/api/login", json={"password": PASSWORD}).json()["csrf_token"]
                client.headers["X-CSRF-Token"] = token
                assert client.get("/api/modules").status_code == 200
                proxy.cut()
                assert client.get("/healthz").status_code == 503
                assert client.get("/api/modules").status_code == 503
                body = {"ip": "10.0.0.2", "port": 80}
                assert client.post("/api/modules/1/1/hosts", json=body).status_code == 503
                assert client.get("/modules/1/1").status_code == 503
                proxy.restore()
                assert client.get("/healthz").status_code == 200
                assert client.post("/api/modules/1/1/hosts", json=body).status_code == 201
                assert len(client.get("/api/modules/1/1").json()["hosts"]) == 2
        finally:
            engine.dispose()
    direct.dispose()


@pytest.mark.parametrize("ip", ["10.0.0", "010.0.0.1", "300.0.0.1", "a.b.c.d"])
def test_a_bad_ip_is_explained_not_a_regex(client: TestClient, ip: str) -> None:
    body = {"modid": 1, "cmdid": 1, "ip": ip, "port": 80}
    response = client.post("/api/modules", json=body)
    assert response.status_code == 422
    [error] = [e for e in response.json()["detail"] if e["loc"][-1] == "ip"]
    assert "dotted IPv4 address such as 10.0.0.7" in error["msg"]
    assert "[0-9]" not in response.text and "pattern" not in error["msg"]
    path = client.delete(f"/api/modules/1/1/hosts/{ip}/80")
    assert path.status_code == 422 and "[0-9]" not in path.text
