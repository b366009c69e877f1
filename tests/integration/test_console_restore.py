"""The console while a table is held (issue 18): the banner and /api/hold tell what the
route services serve and hold; the module list shows the served table with the held
change beside it; Restore (API and page, behind a confirmation) writes the served table
back. The guard state is written here as a route service writes it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from lars.console import build_console
from lars.dbengine import init_schema, make_engine
from lars.protocol import dotted_to_uint
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditLog
from lars.routes.guardstate import GuardState, HeldInfo, write_state

PASSWORD = "restore-password-1"
DETAIL = "modules 3->1, hosts 6->2, max_drop_ratio 0.5"


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "mysql_url")
    eng = make_engine(url)
    init_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(build_console(engine, PASSWORD, user="ops")) as c:
        response = c.post("/api/login", json={"password": PASSWORD})
        assert response.status_code == 200
        c.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield c


def served_state(version: int, held: HeldInfo | None) -> GuardState:
    hosts = {
        (m, 1): tuple((dotted_to_uint(f"10.0.{m}.{h}"), 80, 1) for h in (1, 2)) for m in (1, 2, 3)
    }
    return GuardState(
        saved_at=time.time(),
        writer="dns test",
        version=version,
        since=time.time() - 60,
        routes=hosts,
        held=held,
    )


def incident(engine: Engine) -> int:
    """The table as served, then a DBA's mass delete held by the route services."""
    admin = RouteAdmin(engine, actor="cli:setup")
    for m in (1, 2, 3):
        for h in (1, 2):
            admin.add_host(m, 1, f"10.0.{m}.{h}", 80)
    served = admin.current_version()
    write_state(engine, served_state(served, None))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM RouteData WHERE modid > 1"))
        conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
    held_version = admin.current_version()
    audit = AuditLog(engine)
    hold_id = audit.insert_one(
        audit.row(actor="dns", action="hold", version=held_version, detail=DETAIL)
    )
    held = HeldInfo(held_version, time.time(), hold_id, "drop", DETAIL, "x", 1, 2)
    write_state(engine, served_state(served, held))
    return served


def test_hold_api_tells_what_is_served_and_held(client: TestClient, engine: Engine) -> None:
    assert client.get("/api/hold").json()["held"] is False
    served = incident(engine)
    state = client.get("/api/hold").json()
    assert state["held"] is True
    assert state["served"]["version"] == served and state["served"]["hosts"] == 6
    assert state["held_table"]["hosts"] == 2 and state["held_table"]["detail"] == DETAIL
    page = client.get("/").text
    assert 'id="hold-served"' in page and "6 hosts" in page
    assert 'id="restore-hold"' in page and "data-confirm" in page


def test_module_list_shows_the_served_table_with_the_held_change(
    client: TestClient, engine: Engine
) -> None:
    before = client.get("/modules.part").text
    assert "Held change" not in before
    incident(engine)
    part = client.get("/modules.part").text
    assert "Held change" in part and 'id="served-table"' in part
    rows = re.findall(r'href="/modules/(\d+)/1"', part)
    assert rows == ["1", "2", "3"]  # what agents are served, not the database's one module
    assert part.count("&minus;2") == 2 and "unchanged" in part


def test_restore_through_the_api(client: TestClient, engine: Engine) -> None:
    refused = client.post("/api/hold/restore")
    assert refused.status_code == 409  # no served table recorded yet
    served = incident(engine)
    done = client.post("/api/hold/restore")
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["modules"], body["hosts"], body["served_version"]) == (3, 6, served)
    assert body["added"] == 4 and body["removed"] == 0
    assert len(RouteAdmin(engine).list_routes()) == 6
    row = AuditLog(engine).history(limit=1)[0]
    assert (row.action, row.actor) == ("restore", "ops")


def test_restore_through_the_page(client: TestClient, engine: Engine) -> None:
    incident(engine)
    page = client.get("/").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    done = client.post("/hold/restore", data={"csrf": csrf[1]}, follow_redirects=False)
    assert done.status_code == 303
    assert len(RouteAdmin(engine).list_routes()) == 6
    history = client.get("/history").text
    assert "Restored the served table" in history
