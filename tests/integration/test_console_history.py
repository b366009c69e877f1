"""The console's route history and held-table banner: JSON API and pages, on SQLite and MariaDB."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from lars.console import build_console
from lars.db import route_audit
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditLog

PASSWORD = "history-password-1"
HOLD_DETAIL = "modules 3->0, hosts 12->0, max_drop_ratio 0.5"


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "mysql_url")
    eng = make_engine(url)
    init_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    """Logged in through the API; sends the CSRF header; the console user is 'ops'."""
    with TestClient(build_console(engine, PASSWORD, user="ops")) as c:
        response = c.post("/api/login", json={"password": PASSWORD})
        assert response.status_code == 200
        c.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield c


def hold(engine: Engine, version: int = 7) -> int:
    """What a holding route service writes (the protocol in COMMON.md / lars/routes/audit.py)."""
    audit = AuditLog(engine)
    audit.append([audit.row(actor="dns", action="hold", version=version, detail=HOLD_DETAIL)])
    return audit.history(limit=1)[0].id


def apply(engine: Engine, detail: str) -> None:
    audit = AuditLog(engine)
    audit.append([audit.row(actor="dns", action="apply", version=8, detail=detail)])


# JSON API


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/history"),
        ("GET", "/api/hold"),
        ("POST", "/api/hold/release"),
        ("GET", "/hold.part"),
        ("POST", "/hold/release"),
    ],
)
def test_without_a_session_history_and_hold_answer_401(
    engine: Engine, method: str, path: str
) -> None:
    hold(engine)
    with TestClient(build_console(engine, PASSWORD)) as anon:
        response = anon.request(method, path)
    assert response.status_code == 401
    assert AuditLog(engine).history(limit=1)[0].action == "hold"  # nothing released
    with TestClient(build_console(engine, PASSWORD)) as anon:
        page = anon.get("/history", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")


def test_api_history_lists_console_edits_newest_first_with_filters(client: TestClient) -> None:
    assert (
        client.post(
            "/api/modules", json={"modid": 1, "cmdid": 1, "ip": "10.0.0.1", "port": 80}
        ).status_code
        == 201
    )
    assert (
        client.post("/api/modules/1/1/hosts", json={"ip": "10.0.0.2", "port": 80}).status_code
        == 201
    )
    assert (
        client.put(
            "/api/modules/1/1/hosts/10.0.0.2/80", json={"ip": "10.0.0.3", "port": 81}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/api/modules", json={"modid": 2, "cmdid": 5, "ip": "10.0.0.9", "port": 90}
        ).status_code
        == 201
    )
    assert client.delete("/api/modules/2/5").status_code == 200
    entries = client.get("/api/history").json()
    assert [(e["action"], e["modid"], e["cmdid"]) for e in entries] == [
        ("del-module", 2, 5),
        ("add", 2, 5),
        ("replace", 1, 1),
        ("add", 1, 1),
        ("add", 1, 1),
    ]
    assert {e["actor"] for e in entries} == {"ops"}
    versions = [e["version"] for e in entries]
    assert versions == sorted(versions, reverse=True)
    assert versions[0] == client.get("/api/versions").json()["version"]
    replace = entries[2]
    assert (replace["ip"], replace["port"], replace["detail"]) == (
        "10.0.0.3",
        81,
        "10.0.0.2:80 -> 10.0.0.3:81",
    )
    module = client.get("/api/history", params={"modid": 1, "cmdid": 1}).json()
    assert [e["action"] for e in module] == ["replace", "add", "add"]
    page = client.get("/api/history", params={"limit": 2}).json()
    assert [e["id"] for e in page] == [entries[0]["id"], entries[1]["id"]]
    older = client.get("/api/history", params={"limit": 2, "before": page[-1]["id"]}).json()
    assert [e["id"] for e in older] == [entries[2]["id"], entries[3]["id"]]
    assert client.get("/api/history", params={"limit": 0}).status_code == 422
    assert client.get("/api/history", params={"modid": -1}).status_code == 422
    # found by schemathesis: an id past 64 bits was a 500 (SQLite cannot bind it)
    assert client.get("/api/history", params={"before": 2**63}).status_code == 422
    assert len(client.get("/api/history", params={"before": 2**63 - 1}).json()) == 5
    assert client.get("/history", params={"before": 2**64}).status_code == 404


def test_api_hold_release_and_apply(client: TestClient, engine: Engine) -> None:
    assert client.get("/api/hold").json() == {
        "held": False,
        "hold": None,
        "release": None,
        "served": None,  # no route service saved its guard state here (issue 18)
        "held_table": None,
    }
    refused = client.post("/api/hold/release")
    assert refused.status_code == 409
    assert "no route table is held" in refused.json()["detail"]
    RouteAdmin(engine).add_host(1, 1, "10.0.0.1", 80)
    hold_id = hold(engine)
    state = client.get("/api/hold").json()
    assert state["held"] is True
    assert (state["hold"]["id"], state["hold"]["detail"], state["hold"]["version"]) == (
        hold_id,
        HOLD_DETAIL,
        7,
    )
    assert state["release"] is None
    no_csrf = client.post("/api/hold/release", headers={"X-CSRF-Token": "wrong"})
    assert no_csrf.status_code == 403
    done = client.post("/api/hold/release")
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["hold"]["id"] == hold_id
    release = body["release"]
    assert (release["action"], release["actor"]) == ("release", "ops")
    assert release["version"] == client.get("/api/versions").json()["version"]
    assert release["id"] > hold_id
    assert f"hold #{hold_id}" in release["detail"]
    # still held until a route service applies it; the release shows as pending
    state = client.get("/api/hold").json()
    assert state["held"] is True
    assert state["release"]["id"] == release["id"]
    again = client.post("/api/hold/release")  # idempotent: the same result, nothing written
    assert again.status_code == 200 and again.json()["release"] == release
    apply(engine, "released by ops")
    assert client.get("/api/hold").json()["held"] is False
    assert client.get("/api/history", params={"limit": 1}).json()[0]["action"] == "apply"


def test_a_hold_ended_by_a_table_change_is_not_shown(client: TestClient, engine: Engine) -> None:
    hold(engine)
    apply(engine, "table changed")
    assert client.get("/api/hold").json()["held"] is False
    assert client.post("/api/hold/release").status_code == 409
    hold(engine, version=9)  # held again later: the newest hold/apply row decides
    assert client.get("/api/hold").json()["hold"]["version"] == 9


def test_without_route_audit_table_history_is_empty_and_release_refused(
    client: TestClient, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {route_audit.name}"))
    assert (
        client.post(
            "/api/modules", json={"modid": 1, "cmdid": 1, "ip": "10.0.0.1", "port": 80}
        ).status_code
        == 201
    )
    assert client.get("/api/history").json() == []
    assert client.get("/api/hold").json()["held"] is False
    refused = client.post("/api/hold/release")
    assert refused.status_code == 409
    assert "lars initdb" in refused.json()["detail"]
    page = client.get("/history")
    assert page.status_code == 200
    assert "no RouteAudit table" in page.text
    assert client.get("/modules/1/1").status_code == 200


# Pages


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_banner_on_every_page_while_held_and_release_form(
    client: TestClient, engine: Engine
) -> None:
    RouteAdmin(engine, actor="cli:dba").add_host(1, 1, "10.0.0.1", 80)
    for url in ("/", "/versions", "/history", "/modules/1/1"):
        assert 'id="hold"' not in client.get(url).text, url
    hold(engine)
    for url in ("/", "/versions", "/history", "/modules/1/1"):
        page = client.get(url).text
        assert 'id="hold"' in page, url
        assert html.escape(HOLD_DETAIL) in page
        assert 'action="/hold/release"' in page
    part = client.get("/hold.part")
    assert part.status_code == 200
    assert html.escape(HOLD_DETAIL) in part.text
    assert "<html" not in part.text
    page = client.get("/").text
    expired = client.post("/hold/release", data={"csrf": "stale"}, follow_redirects=False)
    assert expired.status_code == 403
    assert client.get("/api/hold").json()["release"] is None
    done = client.post("/hold/release", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/history"
    history = client.get("/history").text
    assert "written at version" in history  # the flash
    assert re.search(r'class="action-release".*?<td class="mono">ops</td>', history, re.S)
    # the banner now says the release waits for a route service, without a second button
    assert 'id="hold-released"' in history
    assert 'action="/hold/release"' not in history
    apply(engine, "released by ops")
    assert 'id="hold"' not in client.get("/").text
    # release is idempotent (one release row per hold): a second click answers the first
    again = client.post("/hold/release", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert again.status_code == 303
    history = client.get("/history").text
    assert "Already released: release #" in history and "nothing written" in history
    assert len(re.findall(r'class="action-release"', history)) == 1


def test_module_page_shows_its_history_and_history_pages_back(
    client: TestClient, engine: Engine
) -> None:
    admin = RouteAdmin(engine, actor="cli:alice")
    admin.add_host(1, 1, "10.0.0.1", 80)
    admin.add_host(2, 2, "10.9.9.9", 99)
    for port in range(1000, 1060):
        admin.add_host(3, 3, "10.0.0.3", port)
    module = client.get("/modules/1/1").text
    assert 'id="module-history"' in module
    assert "cli:alice" in module
    assert "10.0.0.1:80" in module
    assert "10.9.9.9" not in module  # another module's entry
    first = client.get("/history").text
    assert first.count('data-entry="') == 50
    assert "10.0.0.3:1059" in first and "10.0.0.1:80" not in first
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert second.count('data-entry="') == 12
    assert "10.0.0.1:80" in second and "10.0.0.3:1059" not in second
    assert 'id="older"' not in second
    only = client.get("/history", params={"modid": 2, "cmdid": 2}).text
    assert only.count('data-entry="') == 1
    assert client.get("/history", params={"before": "x"}).status_code == 404


def test_module_history_leaves_out_table_wide_rows(client: TestClient, engine: Engine) -> None:
    """Hold/release/apply rows carry modid 0 and cmdid 0: module 0:0 must not list them."""
    RouteAdmin(engine, actor="cli:x").add_host(0, 0, "10.0.0.1", 80)
    hold(engine)
    assert [e["action"] for e in client.get("/api/history").json()] == ["hold", "add"]
    module = client.get("/api/history", params={"modid": 0, "cmdid": 0}).json()
    assert [e["action"] for e in module] == ["add"]
    assert 'class="action-hold"' not in client.get("/modules/0/0").text
