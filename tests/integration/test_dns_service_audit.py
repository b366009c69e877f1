"""ServiceAudit on SQLite: hold rows shared by several route services, sql rows capped."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sqlalchemy

from lars.dbengine import init_schema, make_engine
from lars.dns.service_audit import ServiceAudit, sql_change_rows
from lars.dns.table import RouteTable
from lars.routes.audit import AuditLog


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sqlalchemy.Engine]:
    eng = make_engine(sqlite_url)
    init_schema(eng)
    yield eng
    eng.dispose()


def test_two_route_services_holding_one_version_write_one_hold_row(
    engine: sqlalchemy.Engine,
) -> None:
    a, b = ServiceAudit(engine), ServiceAudit(engine)
    detail = "modules 3->0, hosts 6->0, max_drop_ratio 0.5"
    first = a.record_hold(7, detail)
    assert first is not None and b.record_hold(7, detail) == first
    assert b.active_hold() is not None
    other = b.record_hold(8, "modules 3->1, hosts 6->1, max_drop_ratio 0.5")  # a new hold
    assert other is not None and other > first
    log = AuditLog(engine)
    assert [e.action for e in log.history(actions=("hold",))] == ["hold", "hold"]
    assert a.release_after(other) is None
    log.release("cli:ops", 8)
    release = a.release_after(other)
    assert release is not None and release.actor == "cli:ops"
    assert a.active_hold() is None  # released
    a.record_apply(8, "released by cli:ops")
    assert a.record_hold(8, "modules 3->1, hosts 6->1, max_drop_ratio 0.5") != other  # new


def test_sql_rows_per_host_capped_and_covered_modules(
    engine: sqlalchemy.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    old = RouteTable.from_rows(1, [(1, 1, ip, 80) for ip in range(1500)] + [(2, 2, 5, 5)])
    new = RouteTable.from_rows(2, [(2, 2, 6, 6)])
    rows, left_out = sql_change_rows(AuditLog(engine), old, new, {(1, 1), (2, 2)})
    assert len(rows) == 1000 and left_out == 502
    assert {r["action"] for r in rows} == {"del"} and rows[0]["actor"] == "sql"
    audit = ServiceAudit(engine)
    log = AuditLog(engine)
    log.append([log.row(actor="cli:bob", action="add", modid=2, cmdid=2, version=2)])
    assert audit.covered_modules(1, 2) == {(2, 2)}
    assert audit.covered_modules(2, 3) == set()  # version outside (old, new]
    with caplog.at_level(logging.WARNING, logger="lars.dns.service_audit"):
        written = audit.record_sql_edits(old, new, {(1, 1), (2, 2)})
    assert written == 1000  # module (2, 2) is covered by cli:bob's row
    assert "500 more host changes" in caplog.text
    sql = log.history(limit=2000, actions=("del", "add"))
    assert len([e for e in sql if e.actor == "sql"]) == 1000
