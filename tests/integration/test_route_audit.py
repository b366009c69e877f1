"""RouteAdmin's audit rows on SQLite and MariaDB: one per edit, same transaction, actor, version."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from lars.db import route_audit, route_data
from lars.dbengine import init_schema, make_engine
from lars.errors import StoreUnavailable, ValidationError
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditEntry, AuditLog, NothingHeld, cli_actor


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def engine(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Engine]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "mysql_url")
    eng = make_engine(url)
    init_schema(eng)
    yield eng
    eng.dispose()


def _plain(entries: list[AuditEntry]) -> list[tuple[object, ...]]:
    return [
        (e.actor, e.action, e.modid, e.cmdid, e.ip, e.port, e.version, e.detail) for e in entries
    ]


def test_each_edit_writes_one_audit_row_with_actor_and_bumped_version(
    engine: sqlalchemy.Engine,
) -> None:
    clock = Clock(1000.0)
    admin = RouteAdmin(engine, clock=clock, actor="console")
    v1 = admin.add_host(1, 1, "10.0.0.5", 80)
    v2 = admin.add_host(1, 1, "10.0.0.7", 81, actor="cli:alice")
    clock.now = 2000.0
    v3 = admin.replace_host(1, 1, "10.0.0.5", 80, "10.0.0.6", 80)
    v4 = admin.del_host(1, 1, "10.0.0.6", 80)
    admin.add_host(2, 3, "10.0.0.2", 9000)
    admin.add_host(2, 3, "10.0.0.1", 9000)
    v7 = admin.del_module(2, 3, actor="cli:bob")
    assert (v1, v2, v3, v4, v7) == (1000, 1001, 2000, 2001, 2004)
    entries = AuditLog(engine).history()
    assert _plain(entries) == [
        (
            "cli:bob",
            "del-module",
            2,
            3,
            "0.0.0.0",
            0,
            2004,
            "2 host(s): 10.0.0.1:9000, 10.0.0.2:9000",
        ),
        ("console", "add", 2, 3, "10.0.0.1", 9000, 2003, "10.0.0.1:9000"),
        ("console", "add", 2, 3, "10.0.0.2", 9000, 2002, "10.0.0.2:9000"),
        ("console", "del", 1, 1, "10.0.0.6", 80, 2001, "10.0.0.6:80"),
        ("console", "replace", 1, 1, "10.0.0.6", 80, 2000, "10.0.0.5:80 -> 10.0.0.6:80"),
        ("cli:alice", "add", 1, 1, "10.0.0.7", 81, 1001, "10.0.0.7:81"),
        ("console", "add", 1, 1, "10.0.0.5", 80, 1000, "10.0.0.5:80"),
    ]
    assert [e.ts for e in entries] == [2000] * 5 + [1000] * 2
    assert entries[0].id > entries[-1].id
    # the version of every row is a version RouteVersion really had, and the latest is current
    assert entries[0].version == admin.current_version()
    assert _plain(AuditLog(engine).history(1, 1, limit=2))[1][1] == "replace"


def test_default_actor_is_the_os_user(engine: sqlalchemy.Engine) -> None:
    RouteAdmin(engine).add_host(1, 1, "10.0.0.5", 80)
    (entry,) = AuditLog(engine).history()
    assert entry.actor == cli_actor()
    assert entry.actor.startswith("cli:")


def test_a_refused_edit_writes_no_audit_row(engine: sqlalchemy.Engine) -> None:
    admin = RouteAdmin(engine, actor="console")
    admin.add_host(1, 1, "10.0.0.5", 80)
    with pytest.raises(ValidationError):
        admin.add_host(1, 1, "10.0.0.5", 80)
    with pytest.raises(ValidationError):
        admin.del_module(9, 9)
    assert [e.action for e in AuditLog(engine).history()] == ["add"]


def test_edit_and_audit_commit_together(
    engine: sqlalchemy.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing audit insert rolls the edit back: never a route change without its row."""
    admin = RouteAdmin(engine, actor="console")
    admin.add_host(1, 1, "10.0.0.5", 80)
    version = admin.current_version()

    def broken(conn: sqlalchemy.Connection, rows: object) -> None:
        raise OperationalError("INSERT INTO RouteAudit", {}, Exception("disk full"))

    monkeypatch.setattr(admin.audit, "write", broken)
    with pytest.raises(StoreUnavailable, match="disk full"):
        admin.add_host(1, 1, "10.0.0.6", 80)
    assert [(e.ip, e.port) for e in admin.list_routes()] == [("10.0.0.5", 80)]
    assert admin.current_version() == version
    assert len(AuditLog(engine).history()) == 1


def test_original_database_without_route_audit_edits_and_logs_once(
    engine: sqlalchemy.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {route_audit.name}"))
    admin = RouteAdmin(engine, actor="console")
    with caplog.at_level(logging.WARNING, logger="lars.routes.audit"):
        admin.add_host(1, 1, "10.0.0.5", 80)
        admin.replace_host(1, 1, "10.0.0.5", 80, "10.0.0.6", 80)
        admin.del_module(1, 1)
        admin.add_host(1, 1, "10.0.0.7", 80)
    warnings = [r for r in caplog.records if "not audited" in r.getMessage()]
    assert len(warnings) == 1
    assert [(e.ip, e.port) for e in admin.list_routes()] == [("10.0.0.7", 80)]
    assert admin.audit.history() == []
    with engine.connect() as conn:
        assert conn.execute(select(route_data.c.serverport)).scalars().all() == [80]
    # `lars initdb` (init_schema) creates the missing table; a new admin then audits
    init_schema(engine)
    fresh = RouteAdmin(engine, actor="console")
    fresh.del_host(1, 1, "10.0.0.7", 80)
    assert [e.action for e in fresh.audit.history()] == ["del"]


def test_console_edits_are_audited_as_the_console_user(sqlite_url: str) -> None:
    from starlette.testclient import TestClient

    from lars.console import build_console

    engine = make_engine(sqlite_url)
    init_schema(engine)
    try:
        RouteAdmin(engine, actor="cli:setup").add_host(1, 1, "10.0.0.5", 80)
        with TestClient(build_console(engine, "test-password-1", user="ops")) as client:
            login = client.post("/api/login", json={"password": "test-password-1"})
            client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            added = client.post("/api/modules/1/1/hosts", json={"ip": "10.0.0.6", "port": 80})
            assert added.status_code in (200, 201), added.text
        newest = AuditLog(engine).history()[0]
        assert (newest.actor, newest.action, newest.ip, newest.port) == (
            "ops",
            "add",
            "10.0.0.6",
            80,
        )
    finally:
        engine.dispose()


def test_hold_state_follows_the_newest_hold_or_apply_row(engine: sqlalchemy.Engine) -> None:
    clock = Clock(3000.0)
    admin = RouteAdmin(engine, clock=clock, actor="cli:op")
    audit = admin.audit
    admin.add_host(1, 1, "10.0.0.1", 80)

    def write(action: str, detail: str = "") -> int:
        audit.append([audit.row(actor="dns", action=action, version=9, detail=detail)])
        return audit.history(limit=1)[0].id

    assert audit.hold_state() is None
    with pytest.raises(NothingHeld, match="no route table is held"):
        admin.release_hold()
    first = write("hold", "modules 1->0")
    write("hold", "modules 1->0")  # a second route service holding the same table
    state = audit.hold_state()
    assert state is not None and state.hold.id > first and state.release is None
    done = admin.release_hold()
    assert done.held is not None and done.held.hold.id == state.hold.id
    assert (done.entry.action, done.entry.actor, done.entry.version) == (
        "release",
        "cli:op",
        admin.current_version(),
    )
    assert done.entry == audit.history(limit=1)[0]  # what it returns is what it wrote
    pending = audit.hold_state()
    assert pending is not None and pending.release == done.entry  # released, not applied
    write("apply", "released by cli:op")
    assert audit.hold_state() is None
    forced = admin.release_hold(force=True, actor="cli:other")
    assert forced.held is None and forced.entry.detail == "forced: no table was held"
    assert audit.hold_state() is None  # a release alone never holds anything
