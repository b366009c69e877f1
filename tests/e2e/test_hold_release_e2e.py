"""A held table end to end: a real `lars dns` process holds a push-empty table, the console
shows it, an operator releases it from the console (then, on a second hold, with
`lars route release`), and the route service applies it; on SQLite and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from lars.console import build_console
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditLog, cli_actor
from tests.e2e.test_dns_cli import DnsProcess, lars
from tests.integration.dns_wire import RouteConn, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-hold-password"
MODULES = [(1, 1), (1, 2), (2, 1)]


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lars.db'}"
    url: str = request.getfixturevalue("mysql_url")
    return url


@pytest.fixture
def engine(db: str) -> Iterator[Engine]:
    eng = make_engine(db)
    init_schema(eng)
    yield eng
    eng.dispose()


def empty_the_table(engine: Engine) -> None:
    """The measured incident: a DBA empties RouteData by plain SQL."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM RouteData"))
        conn.execute(text("UPDATE RouteVersion SET version = version + 1"))


def newest(engine: Engine, action: str) -> str | None:
    found = AuditLog(engine).history(limit=1, actions=(action,))
    return found[0].detail if found else None


def test_held_table_released_from_the_console_then_the_cli(
    db: str, engine: Engine, tmp_path: Path
) -> None:
    admin = RouteAdmin(engine, actor="cli:setup")
    for i, (m, c) in enumerate(MODULES):
        for h in range(2):
            admin.add_host(m, c, f"10.0.{i}.{h + 1}", 80)
    dns = DnsProcess(["--db", db, "--port", "0", "--poll-interval", "0.1"], tmp_path)
    try:
        with TestClient(build_console(engine, PASSWORD, user="ops")) as console:
            login = console.post("/api/login", json={"password": PASSWORD})
            console.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            assert console.get("/api/hold").json()["held"] is False

            empty_the_table(engine)
            wait_for(lambda: console.get("/api/hold").json()["held"], what="the hold row")
            state = console.get("/api/hold").json()
            assert state["hold"]["actor"] == "dns"
            assert "hosts 6->0" in state["hold"]["detail"]
            assert state["hold"]["version"] == admin.current_version()
            assert 'id="hold"' in console.get("/").text
            with RouteConn(dns.port) as c:
                assert len(c.get(1, 1)) == 2  # the last good table is still served
            status = lars("route", "status", "--db", db, cwd=tmp_path)
            assert "hold: route table held since" in status.stdout

            released = console.post("/api/hold/release")
            assert released.status_code == 200, released.text
            wait_for(lambda: not console.get("/api/hold").json()["held"], what="the apply row")
            assert newest(engine, "apply") == "released by ops"
            with RouteConn(dns.port) as c:
                assert c.get(1, 1) == []  # the released (empty) table is served now

            # refill, then empty again: this time `lars route release` releases it
            for i, (m, c) in enumerate(MODULES):
                for h in range(2):
                    admin.add_host(m, c, f"10.1.{i}.{h + 1}", 81)
            with RouteConn(dns.port) as conn:
                wait_for(lambda: len(conn.get(2, 1)) == 2, what="the refilled table")
            empty_the_table(engine)
            wait_for(lambda: console.get("/api/hold").json()["held"], what="the second hold")
            r = lars("route", "release", "--db", db, cwd=tmp_path)
            assert r.returncode == 0, r.stderr
            assert "hosts 6->0" in r.stdout
            wait_for(lambda: not console.get("/api/hold").json()["held"], what="the 2nd apply")
            assert newest(engine, "apply") == f"released by {cli_actor()}"
            actions = [e["action"] for e in console.get("/api/history").json()]
            assert actions[:2] == ["apply", "release"]
            assert actions.count("hold") == 2 and actions.count("release") == 2
    finally:
        assert dns.stop() == 0
