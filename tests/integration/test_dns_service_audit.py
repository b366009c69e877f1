"""ServiceAudit on SQLite: hold and sql rows shared by several route services, sql rows
capped."""

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


def _sql_rows(engine: sqlalchemy.Engine) -> list[tuple[str, int, int, int, int]]:
    """(action, modid, serverip, serverport, version) of every 'sql' row, in id order."""
    log = AuditLog(engine)
    entries = sorted(log.history(limit=100, actions=("add", "del")), key=lambda e: e.id)
    return [
        (e.action, e.modid, int(e.ip.split(".")[-1]), e.port, e.version)
        for e in entries
        if e.actor == "sql"
    ]


def test_two_route_services_write_the_sql_rows_of_one_edit_once(
    engine: sqlalchemy.Engine,
) -> None:
    """Two route services on one database load the same plain-SQL edit: the first writes
    its 'sql' rows, the second finds them and writes none (was: one copy per service)."""
    a, b = ServiceAudit(engine), ServiceAudit(engine)
    old = RouteTable.from_rows(1, [(1, 1, 10, 80), (2, 2, 20, 80)])
    new = RouteTable.from_rows(2, [(1, 1, 11, 80), (2, 2, 20, 80)])
    assert a.record_sql_edits(old, new, {(1, 1)}) == 2
    assert b.covered_modules(1, 2) == {(1, 1)}
    assert b.record_sql_edits(old, new, {(1, 1)}) == 0
    assert _sql_rows(engine) == [("del", 1, 10, 80, 2), ("add", 1, 11, 80, 2)]
    # its own rows, at the old version of its next load, do not cover that load
    newer = RouteTable.from_rows(3, [(1, 1, 12, 80), (2, 2, 20, 80)])
    assert a.covered_modules(2, 3) == set()
    assert a.record_sql_edits(new, newer, {(1, 1)}) == 2
    assert b.record_sql_edits(new, newer, {(1, 1)}) == 0
    assert len(_sql_rows(engine)) == 4


def test_sql_rows_cover_other_services_across_a_renumber(engine: sqlalchemy.Engine) -> None:
    """RouteVersion wrapped (4294967295 -> 1): a 'sql' row at version 1 is in
    (4294967295, 1] in serial-number order."""
    a, b = ServiceAudit(engine), ServiceAudit(engine)
    old = RouteTable.from_rows(4294967295, [(1, 1, 10, 80)])
    new = RouteTable.from_rows(1, [(1, 1, 10, 80), (1, 1, 11, 80)])
    assert a.record_sql_edits(old, new, {(1, 1)}) == 1
    assert b.covered_modules(4294967295, 1) == {(1, 1)}
    assert b.record_sql_edits(old, new, {(1, 1)}) == 0
    assert _sql_rows(engine) == [("add", 1, 11, 80, 1)]


def test_partly_overlapping_load_ranges_audit_each_change_once(
    engine: sqlalchemy.Engine,
) -> None:
    """Service A loads 2 -> 3 then 3 -> 4; service B (a slower poller) loads 1 -> 4.
    B skips module (1, 1), which A audited at version 3, although (1, 1) changed again
    between 3 and 4: A audits that change when it loads 4. A skips module (2, 2), which
    B audited at version 4; B writes module (3, 3) too (changed in 1 -> 2, which A,
    started at 2, did not load). Each host change is written once."""
    a, b = ServiceAudit(engine), ServiceAudit(engine)
    v1 = RouteTable.from_rows(1, [(1, 1, 10, 80), (2, 2, 20, 80)])
    v2 = RouteTable.from_rows(2, [(1, 1, 10, 80), (2, 2, 20, 80), (3, 3, 30, 80)])
    v3 = RouteTable.from_rows(3, [(1, 1, 10, 80), (1, 1, 11, 80), (2, 2, 20, 80), (3, 3, 30, 80)])
    v4 = RouteTable.from_rows(
        4, [(1, 1, 10, 80), (1, 1, 12, 80), (2, 2, 20, 80), (2, 2, 21, 80), (3, 3, 30, 80)]
    )
    assert a.record_sql_edits(v2, v3, {(1, 1)}) == 1  # add 11 at 3
    assert b.record_sql_edits(v1, v4, {(1, 1), (2, 2), (3, 3)}) == 2  # add 21, add 30
    assert a.record_sql_edits(v3, v4, {(1, 1), (2, 2)}) == 2  # del 11, add 12
    assert sorted(_sql_rows(engine)) == sorted(
        [
            ("add", 1, 11, 80, 3),
            ("add", 2, 21, 80, 4),
            ("add", 3, 30, 80, 4),
            ("del", 1, 11, 80, 4),
            ("add", 1, 12, 80, 4),
        ]
    )
