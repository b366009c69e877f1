"""Edits that cannot get stuck, on the real MariaDB with concurrency (issue 18 item 5):
20 releases at once write one release row; concurrent first drains of a database without
its RouteVersion row (a gap-lock deadlock, error 1213) all succeed after retries; with
RouteVersion at 4294967295 drain, add and delete work and a running route service
pushes each change."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy
from sqlalchemy import delete, func, select

from lars.db import route_audit, route_data, route_version
from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsService
from lars.protocol.version import MAX_VERSION
from lars.routes.admin import RouteAdmin
from lars.routes.audit import Release
from tests.integration.dns_wire import RouteConn, hosts_of
from tests.integration.test_dns_service import config

pytestmark = pytest.mark.mysql


@pytest.fixture
def engine(mysql_url: str) -> Iterator[sqlalchemy.Engine]:
    eng = make_engine(mysql_url)
    init_schema(eng)
    yield eng
    eng.dispose()


def at_once(n: int, fn: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    """Run fn(0..n-1) on n threads released together; results and errors."""
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait(30)
        try:
            value = fn(i)
        except BaseException as exc:  # collected, asserted on below
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(value)

    threads = [threading.Thread(target=run, args=(i,), name=f"edit-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return results, errors


def releases(engine: sqlalchemy.Engine) -> int:
    with engine.connect() as conn:
        query = (
            select(func.count()).select_from(route_audit).where(route_audit.c.action == "release")
        )
        return int(conn.execute(query).scalar_one())


def test_twenty_concurrent_releases_write_one_release_row(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    admin.add_host(1, 1, "10.0.0.1", 80)
    admin.audit.append([admin.audit.row(actor="dns", action="hold", version=1, detail="1->0")])
    engines = [make_engine(mysql_url) for _ in range(20)]  # 20 connections, truly at once
    try:
        results, errors = at_once(
            20, lambda i: RouteAdmin(engines[i], actor=f"console:u{i}").release_hold()
        )
    finally:
        for e in engines:
            e.dispose()
    assert errors == []
    done = [r for r in results if isinstance(r, Release)]
    assert len(done) == 20
    assert releases(engine) == 1  # failed before: 20 rows
    assert len({r.entry.id for r in done}) == 1  # everyone got the same answer
    assert sum(not r.repeated for r in done) == 1
    engine.dispose()


def test_concurrent_drains_without_a_route_version_row_all_succeed(
    engine: sqlalchemy.Engine,
) -> None:
    """8 first edits at once on a database whose RouteVersion row never existed (made in
    plain SQL): they may deadlock on its gap lock (retried) and must all succeed. Before
    issue 18 some failed: RouteHostMeta looked missing to concurrent first callers, and
    a deadlock was a 503."""
    n = 8
    with engine.begin() as conn:
        for i in range(n + 1):
            conn.execute(
                route_data.insert().values(modid=1, cmdid=1, serverip=0x0A000001 + i, serverport=80)
            )
    admin = RouteAdmin(engine)
    _, errors = at_once(n, lambda i: admin.drain(1, 1, f"10.0.0.{i + 1}", 80))
    assert errors == []
    drained = [e for e in admin.list_routes(1, 1) if not e.enabled]
    assert len(drained) == n
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(route_version)).scalar_one() == 1


def lock_waits(engine: sqlalchemy.Engine) -> int:
    """Connections of this test's database inserting the RouteVersion row (the server is
    shared: other tests' statements must not count). The process list is live, where
    innodb_trx sometimes lacked the waiting transaction for the whole wait."""
    query = (
        "SELECT COUNT(*) FROM information_schema.processlist "
        "WHERE db = DATABASE() AND info LIKE 'INSERT INTO %%RouteVersion%%'"
    )
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(query).scalar_one())


def activity(engine: sqlalchemy.Engine) -> list[tuple[object, ...]]:
    """This database's connections and what they do (for a failure's message)."""
    query = (
        "SELECT p.id, p.command, p.state, p.info, t.trx_state "
        "FROM information_schema.processlist p LEFT JOIN information_schema.innodb_trx t "
        "ON p.id = t.trx_mysql_thread_id "
        "WHERE p.db = DATABASE()"
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(query)]


def test_a_drain_that_deadlocks_on_the_missing_route_version_row_is_retried(
    engine: sqlalchemy.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The deadlock of two first edits, made certain: another writer (heavier, so InnoDB
    picks the drain as the victim) holds the gap lock of the missing RouteVersion row
    while the drain waits to insert it, then inserts it too: MariaDB error 1213 for the
    drain. Before issue 18 the drain failed (503); now it runs again and succeeds."""
    admin = RouteAdmin(engine)
    with engine.begin() as conn:  # in plain SQL: the RouteVersion row never existed (a
        # deleted one stays delete-marked until purged, and the drain's SELECT ... FOR
        # UPDATE would wait on that record instead of sharing the gap lock)
        for ip in (0x0A000001, 0x0A000002):
            conn.execute(route_data.insert().values(modid=1, cmdid=1, serverip=ip, serverport=80))
        conn.exec_driver_sql("CREATE TABLE filler (id INT PRIMARY KEY) ENGINE=InnoDB")
    admin.has_host_meta()
    caplog.set_level(logging.INFO, logger="lars.routes.routeedit")
    other = engine.connect()
    try:
        tx = other.begin()
        other.exec_driver_sql(  # weight: the other writer has done more work
            "INSERT INTO filler (id) SELECT seq FROM seq_1_to_200"
        )
        other.execute(
            select(route_version.c.version).where(route_version.c.id == 1).with_for_update()
        )
        results: list[object] = []
        errors: list[BaseException] = []

        def drain() -> None:
            try:
                results.append(admin.drain(1, 1, "10.0.0.1", 80))
            except BaseException as exc:  # asserted on below
                errors.append(exc)

        thread = threading.Thread(target=drain, name="drain")
        thread.start()
        deadline = time.monotonic() + 30
        while lock_waits(engine) == 0:  # the drain waits to insert the row
            assert time.monotonic() < deadline and thread.is_alive(), (errors, activity(engine))
            time.sleep(0.02)
        other.execute(route_version.insert().values(id=1, version=7))  # the cycle: 1213
        tx.commit()
        thread.join(60)
        assert not thread.is_alive()
    finally:
        other.close()
    assert errors == []  # failed before: StoreUnavailable "... 1213 Deadlock found ..."
    assert len(results) == 1
    retried = [r for r in caplog.records if "deadlock (error 1213)" in r.getMessage()]
    assert len(retried) == 1
    assert admin.list_routes(1, 1)[0].enabled is False


def test_route_version_at_the_top_drain_add_delete_are_pushed(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    init_schema(engine)
    admin = RouteAdmin(engine, actor="cli:ops")
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        admin.add_host(3, 3, ip, 80)
    with engine.begin() as conn:
        conn.execute(delete(route_version))
        conn.execute(route_version.insert().values(id=1, version=MAX_VERSION))
    dns = DnsService(config(mysql_url))
    dns.start()
    try:
        with RouteConn(dns.port) as conn:
            assert len(conn.get(3, 3)) == 3  # subscribed

            def pushed() -> list[tuple[str, int]]:
                msgid, msg = conn.read(timeout=30)
                assert msgid == 2 and (msg.modid, msg.cmdid) == (3, 3)
                return sorted(hosts_of(msg))

            assert admin.drain(3, 3, "10.0.0.1", 80) == 1  # failed before: DataError 1264
            assert pushed() == [("10.0.0.2", 80), ("10.0.0.3", 80)]
            assert dns.table.version == 1
            admin.add_host(3, 3, "10.0.0.4", 80)
            assert pushed() == [("10.0.0.2", 80), ("10.0.0.3", 80), ("10.0.0.4", 80)]
            admin.del_host(3, 3, "10.0.0.2", 80)
            assert pushed() == [("10.0.0.3", 80), ("10.0.0.4", 80)]
    finally:
        dns.stop()
    renumber = admin.audit.history(actions=("renumber",))
    assert [(e.version, e.actor) for e in renumber] == [(1, "cli:ops")]
    # the route service knew those edits were lars's across the wrap: no 'sql' rows
    assert [e for e in admin.audit.history() if e.actor == "sql"] == []
    engine.dispose()
