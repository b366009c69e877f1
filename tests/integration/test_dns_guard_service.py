"""The route service's guard, change detection and audit on a real database (SQLite
here; the same checks run on MariaDB in tests/mysql/test_dns_guard_mysql.py)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy
from sqlalchemy import select, text

from lars.db import route_audit
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsService
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditLog, cli_actor
from tests.integration.dns_wire import RouteConn, hosts_of, wait_for
from tests.integration.test_dns_service import config

MODULES = [(1, 1), (1, 2), (2, 1)]


def _service(url: str) -> DnsService:
    # reload_interval 60 s: whatever arrives sooner was found by the poll, not the reload
    return DnsService(dataclasses.replace(config(url), reload_interval=60.0))


def _audit_rows(engine: sqlalchemy.Engine) -> list[tuple[str, str, int, int, str]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(
                route_audit.c.actor,
                route_audit.c.action,
                route_audit.c.modid,
                route_audit.c.version,
                route_audit.c.detail,
            ).order_by(route_audit.c.id)
        ).all()
    return [(str(a), str(b), int(m), int(v), str(d)) for a, b, m, v, d in found]


def release_with_cli(url: str) -> str:
    """`lars route release` in a real process (as an operator runs it)."""
    done = subprocess.run(
        [sys.executable, "-m", "lars", "route", "release", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_push_empty_is_held_then_released(url: str, *, cli: bool = False) -> None:
    engine = make_engine(url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    for i, (m, c) in enumerate(MODULES):
        for h in range(2):
            admin.add_host(m, c, f"10.0.{i}.{h + 1}", 80)
    svc = _service(url)
    svc.start()
    try:
        with RouteConn(svc.port) as sub:
            for m, c in MODULES:
                assert len(sub.get(m, c)) == 2
            with engine.begin() as conn:  # the measured incident, in plain SQL
                conn.execute(text("DELETE FROM RouteData"))
                conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
            version = admin.current_version()
            wait_for(lambda: svc.stats().held is not None, what="the table held")
            held = svc.stats().held
            assert held is not None and held.version == version
            assert (held.modules_before, held.hosts_before) == (3, 6)
            assert (held.modules_after, held.hosts_after) == (0, 0)
            assert svc.stats().hosts == 6  # the last good table is still served
            with pytest.raises(socket.timeout):
                sub.read(timeout=0.5)  # and nothing was pushed
            with RouteConn(svc.port) as newcomer:
                assert len(newcomer.get(1, 1)) == 2
            rows = _audit_rows(engine)
            hold_rows = [r for r in rows if r[1] == "hold"]
            assert hold_rows == [
                ("dns", "hold", 0, version, "modules 3->0, hosts 6->0, max_drop_ratio 0.5")
            ]
            sql_dels = [r for r in rows if r[0] == "sql"]
            assert len(sql_dels) == 6 and {r[1] for r in sql_dels} == {"del"}
            # an operator releases it (what `lars route release` writes)
            if cli:
                assert "release #" in release_with_cli(url)
                actor = cli_actor()
            else:
                actor = "cli:ops"
                AuditLog(engine).release(actor, admin.current_version())
            wait_for(lambda: svc.stats().held is None, what="the release applied")
            pushed = {}
            for _ in MODULES:
                msgid, msg = sub.read(timeout=10)
                pushed[(msg.modid, msg.cmdid)] = hosts_of(msg)
            assert msgid == 2 and pushed == {key: [] for key in MODULES}
            assert svc.stats().hosts == 0
            # the apply row is written just after the table goes live: wait for it
            applied = ("dns", "apply", 0, version, f"released by {actor}")
            wait_for(lambda: _audit_rows(engine)[-1] == applied, what="the apply row")
    finally:
        svc.stop()
        engine.dispose()


def check_restart_during_a_hold_does_not_serve_the_held_table(url: str) -> None:
    """A route service (re)started while the table is held finds the last good table in
    the guard state the first one saved (RouteGuardState, issue 18): it listens and serves
    that table, never the emptied one, until the release."""
    engine = make_engine(url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    for m, c in MODULES:
        admin.add_host(m, c, "10.0.0.1", 80)
    first = _service(url)
    first.start()
    second = _service(url)
    errors: list[BaseException] = []

    def start_second() -> None:
        try:
            second.start()
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    starter = threading.Thread(target=start_second, name="test-dns-second")
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM RouteData"))
            conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
        wait_for(lambda: first.stats().held is not None, what="the table held")
        starter.start()
        wait_for(lambda: second.stats().held is not None, what="the second one holding")
        held = second.stats().held
        assert held is not None and held.hosts_before == 3 and held.hosts_after == 0
        starter.join(20)
        assert not errors and not starter.is_alive()  # listening: it has a good table
        assert second.stats().restored_state
        with RouteConn(second.port) as c:
            assert c.get(1, 1) == [("10.0.0.1", 80)]  # the last good table, not the held one
        AuditLog(engine).release("cli:ops", admin.current_version())
        wait_for(lambda: first.stats().held is None, what="the first one released")
        wait_for(lambda: second.stats().held is None, what="the second one released")
        with RouteConn(second.port) as c:
            assert c.get(1, 1) == []
        def applies() -> list[tuple[str, str, int, int, str]]:
            return [r for r in _audit_rows(engine) if r[1] == "apply"]

        wait_for(lambda: len(applies()) == 2, what="both apply rows")  # written after going live
        assert {r[4] for r in applies()} == {"released by cli:ops"}
    finally:
        second.stop()
        first.stop()
        if starter.is_alive():
            starter.join(20)
        engine.dispose()


def check_original_database_without_route_audit(url: str) -> None:
    """No RouteAudit table (a database made by the original's SQL): the guard holds all
    the same; the hold lasts until the table changes (no release rows to read)."""
    engine = make_engine(url)
    init_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE RouteAudit"))
    admin = RouteAdmin(engine)
    for m, c in MODULES:
        admin.add_host(m, c, "10.0.0.1", 80)
    svc = _service(url)
    svc.start()
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM RouteData"))
            conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
        wait_for(lambda: svc.stats().held is not None, what="the table held")
        held = svc.stats().held
        assert held is not None and held.audit_id is None
        admin.add_host(1, 1, "10.0.0.1", 80)  # the DBA restores all but module (2, 1):
        assert svc.stats().held is not None  # (1 host back of 3: still a mass removal)
        admin.add_host(1, 2, "10.0.0.1", 80)  # one module's host removed in all: applied
        wait_for(lambda: svc.stats().held is None, what="the next change applied")
        assert svc.stats().hosts == 2 and not svc.stats().poller.in_outage
    finally:
        svc.stop()
        engine.dispose()


def check_same_second_double_edit_arrives_fast(url: str) -> None:
    """Two plain-SQL edits with the same `version = UNIX_TIMESTAMP()`: the second one
    waited for the 10 s full reload (9.6 s measured); it must arrive within 1 s."""
    engine = make_engine(url)
    init_schema(engine)
    RouteAdmin(engine).add_host(5, 5, "10.5.0.1", 80)
    stamp = int(time.time()) + 1000  # one fixed "second" for both edits
    svc = _service(url)
    svc.start()

    def edit(ip: int) -> None:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO RouteData (modid, cmdid, serverip, serverport) "
                    f"VALUES (5, 5, {ip}, 80)"
                )
            )
            conn.execute(
                text(f"INSERT INTO RouteChange (modid, cmdid, version) VALUES (5, 5, {stamp})")
            )
            conn.execute(text(f"UPDATE RouteVersion SET version = {stamp}"))

    try:
        with RouteConn(svc.port) as sub:
            assert sub.get(5, 5) == [("10.5.0.1", 80)]
            edit(0x0A050002)
            _msgid, msg = sub.read(timeout=10)
            assert len(msg.host) == 2
            edit(0x0A050003)  # same version as the first edit
            _msgid, msg = sub.read(timeout=1.0)  # the full reload is 60 s away
            assert hosts_of(msg)[-1] == ("10.5.0.3", 80) and len(msg.host) == 3
    finally:
        svc.stop()
        engine.dispose()


def test_push_empty_is_held_then_released(no_leaks: None, sqlite_url: str) -> None:
    check_push_empty_is_held_then_released(sqlite_url)


def test_restart_during_a_hold_does_not_serve_the_held_table(
    no_leaks: None, sqlite_url: str
) -> None:
    check_restart_during_a_hold_does_not_serve_the_held_table(sqlite_url)


def test_same_second_double_edit_arrives_fast(no_leaks: None, sqlite_url: str) -> None:
    check_same_second_double_edit_arrives_fast(sqlite_url)


def test_tool_edits_are_not_audited_as_sql(no_leaks: None, sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    admin.add_host(1, 1, "10.0.0.1", 80)
    svc = _service(sqlite_url)
    svc.start()
    try:
        admin.add_host(1, 1, "10.0.0.2", 80, actor="cli:bob")  # audited by RouteAdmin
        with engine.begin() as conn:  # and a DBA's edit of another module, same version
            conn.execute(
                text("INSERT INTO RouteData (modid, cmdid, serverip, serverport) VALUES (2,2,7,8)")
            )
            conn.execute(text("INSERT INTO RouteChange (modid, cmdid, version) VALUES (2,2,1)"))
        wait_for(lambda: (2, 2) in svc.table, what="the SQL edit loaded")
        wait_for(lambda: svc.stats().poller.sql_audit_rows > 0, what="the sql rows")
        sql = [r for r in _audit_rows(engine) if r[0] == "sql"]
        assert sql and {r[2] for r in sql} == {2}
    finally:
        svc.stop()
        engine.dispose()
