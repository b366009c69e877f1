"""RouteStore on SQLite (the same checks run on MariaDB in tests/mysql/test_dns_mysql.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy import event

from lars.dbengine import init_schema, make_engine
from lars.dns.store import RouteStore
from lars.routes.admin import RouteAdmin


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def check_load_and_delete_exactly(url: str) -> None:
    engine = make_engine(url)
    try:
        init_schema(engine)
        store = RouteStore(engine)
        assert store.read_version() == 0
        empty = store.load()
        assert (empty.version, empty.routes, empty.changes) == (0, [], [])
        admin = RouteAdmin(engine, clock=Clock(1000))
        admin.add_host(1, 2, "192.168.1.177", 9000)
        admin.add_host(1, 2, "10.0.0.1", 80)
        snap = store.load()
        assert snap.version == 1001 == store.read_version()
        assert sorted(snap.routes) == [(1, 2, 167772161, 80), (1, 2, 3232235953, 9000)]
        assert [(c.modid, c.cmdid, c.version) for c in snap.changes] == [
            (1, 2, 1000),
            (1, 2, 1001),
        ]
        admin.add_host(3, 3, "1.1.1.1", 1)  # a change row the load did not read
        assert store.delete_changes([c.id for c in snap.changes]) == 2
        assert admin.pending_changes() == [(3, 3, 1002)]
        assert store.delete_changes([]) == 0
    finally:
        engine.dispose()


def check_dba_plain_sql_edit(url: str) -> None:
    engine = make_engine(url)
    try:
        init_schema(engine)
        with engine.begin() as conn:
            conn.execute(
                sqlalchemy.text(
                    "INSERT INTO RouteData (modid, cmdid, serverip, serverport) "
                    "VALUES (5, 6, 3232235953, 7000)"
                )
            )
            conn.execute(
                sqlalchemy.text("INSERT INTO RouteChange (modid, cmdid, version) VALUES (5, 6, 77)")
            )
            conn.execute(sqlalchemy.text("INSERT INTO RouteVersion (id, version) VALUES (1, 77)"))
            # a change row a DBA inserted before raising the version: left for later
            conn.execute(
                sqlalchemy.text("INSERT INTO RouteChange (modid, cmdid, version) VALUES (8, 8, 78)")
            )
        snap = RouteStore(engine).load()
        assert snap.version == 77
        assert snap.routes == [(5, 6, 3232235953, 7000)]
        assert [(c.modid, c.cmdid, c.version) for c in snap.changes] == [(5, 6, 77)]
    finally:
        engine.dispose()


def check_snapshot_consistency(url: str) -> None:
    """A writer commits a new version in the middle of a load: the load must not see it."""
    engine = make_engine(url)
    writer_engine = make_engine(url)
    try:
        init_schema(engine)
        admin = RouteAdmin(writer_engine, clock=Clock(1000))
        v1 = admin.add_host(1, 1, "1.1.1.1", 1)
        store = RouteStore(engine)
        committed: list[int] = []

        def mid_load(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            if "RouteVersion" in statement and not committed:
                committed.append(admin.add_host(1, 1, "2.2.2.2", 2))

        event.listen(engine, "after_cursor_execute", mid_load)
        try:
            snap = store.load()
        finally:
            event.remove(engine, "after_cursor_execute", mid_load)
        assert committed, "the writer did not run during the load"
        assert snap.version == v1
        assert snap.routes == [(1, 1, 0x01010101, 1)]
        assert [c.version for c in snap.changes] == [v1]
        after = store.load()
        assert after.version == committed[0]
        assert sorted(after.routes) == [(1, 1, 0x01010101, 1), (1, 1, 0x02020202, 2)]
        assert [c.version for c in after.changes] == [v1, committed[0]]
    finally:
        engine.dispose()
        writer_engine.dispose()


def test_load_and_delete_exactly_sqlite(sqlite_url: str) -> None:
    check_load_and_delete_exactly(sqlite_url)


def test_dba_plain_sql_edit_sqlite(sqlite_url: str) -> None:
    check_dba_plain_sql_edit(sqlite_url)


def test_snapshot_consistency_sqlite(sqlite_url: str) -> None:
    check_snapshot_consistency(sqlite_url)
