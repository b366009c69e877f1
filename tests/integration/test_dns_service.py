"""The route service over loopback TCP on SQLite: replies, subscriptions, pushes, bad input."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
import sqlalchemy

from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsConfig, DnsService
from lars.dns.table import MAX_HOSTS_PER_MODULE
from lars.reactor import ReactorConfig
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import RouteConn, hosts_of, wait_for


def config(url: str, threads: int = 2, use_uvloop: bool = True) -> DnsConfig:
    return DnsConfig(
        db_url=url,
        reactor=ReactorConfig(ip="127.0.0.1", port=0, threads=threads, use_uvloop=use_uvloop),
        poll_interval=0.05,
        reload_interval=2.0,
        retry_initial=0.05,
        retry_max=0.2,
    )


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sqlalchemy.Engine]:
    eng = make_engine(sqlite_url)
    init_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def service(no_leaks: None, sqlite_url: str, engine: sqlalchemy.Engine) -> Iterator[DnsService]:
    RouteAdmin(engine).add_host(1, 1, "192.168.1.177", 9000)
    svc = DnsService(config(sqlite_url))
    svc.start()
    yield svc
    svc.stop()


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_reply_and_empty_module(
    no_leaks: None, sqlite_url: str, engine: sqlalchemy.Engine, use_uvloop: bool
) -> None:
    RouteAdmin(engine).add_host(1, 1, "192.168.1.177", 9000)
    svc = DnsService(config(sqlite_url, threads=0, use_uvloop=use_uvloop))
    svc.start()
    try:
        with RouteConn(svc.port) as c:
            assert c.get(1, 1) == [("192.168.1.177", 9000)]
            assert c.get(2, 2) == []
            assert c.get(-1, 2**31 - 1) == []
        assert svc.stats().version == RouteAdmin(engine).current_version()
    finally:
        svc.stop()


def test_push_reaches_exactly_the_subscribers_on_every_worker(
    service: DnsService, engine: sqlalchemy.Engine
) -> None:
    admin = RouteAdmin(engine)
    conns = [RouteConn(service.port) for _ in range(6)]  # round robin over 2 workers
    try:
        for c in conns[:4]:
            assert c.get(1, 1) == [("192.168.1.177", 9000)]
        for c in conns[4:]:
            assert c.get(2, 2) == []
        wait_for(lambda: service.stats().subscriptions.subscriptions == 6)
        workers = service._server.workers
        assert len(workers) == 2
        assert all(w.state["dns.subscriptions"].connections == 3 for w in workers)

        sent = service.stats().pushes_sent
        admin.add_host(1, 1, "10.0.0.1", 80)
        for c in conns[:4]:
            msgid, msg = c.read()
            assert msgid == 2 and (msg.modid, msg.cmdid) == (1, 1)
            assert hosts_of(msg) == [("10.0.0.1", 80), ("192.168.1.177", 9000)]
        wait_for(lambda: service.stats().pushes_sent == sent + 4, what="4 pushes")
        # the (2, 2) subscribers got nothing: their next frame is the reply to a new request
        for c in conns[4:]:
            assert c.get(3, 3) == []

        # a closed connection's subscriptions go with it
        conns[0].close()
        wait_for(lambda: service.stats().subscriptions.connections == 5)
        sent = service.stats().pushes_sent
        admin.del_host(1, 1, "192.168.1.177", 9000)
        for c in conns[1:4]:
            assert hosts_of(c.read()[1]) == [("10.0.0.1", 80)]
        wait_for(lambda: service.stats().pushes_sent == sent + 3, what="3 pushes")
        assert service.stats().poller.pushed_modules >= 2
        # the change rows read are deleted after the push (spec section 6), so wait for it
        wait_for(lambda: RouteAdmin(engine).pending_changes() == [], what="change rows deleted")
    finally:
        for c in conns:
            c.close()


def test_version_bump_without_change_rows_still_pushes(
    service: DnsService, engine: sqlalchemy.Engine
) -> None:
    with RouteConn(service.port) as c:
        assert c.get(1, 1) == [("192.168.1.177", 9000)]
        with engine.begin() as conn:  # a DBA's edit that forgets RouteChange
            conn.exec_driver_sql(
                "INSERT INTO RouteData (modid, cmdid, serverip, serverport) "
                "VALUES (1, 1, 3232235954, 9001)"
            )
            conn.exec_driver_sql("UPDATE RouteVersion SET version = version + 1 WHERE id = 1")
        msgid, msg = c.read()
        assert msgid == 2
        assert hosts_of(msg) == [("192.168.1.177", 9000), ("192.168.1.178", 9001)]


def test_a_row_the_wire_cannot_carry_is_left_out_and_others_still_push(
    service: DnsService, engine: sqlalchemy.Engine
) -> None:
    with RouteConn(service.port) as c:
        assert c.get(1, 1) == [("192.168.1.177", 9000)]
        assert c.get(5, 5) == []
        with engine.begin() as conn:  # a DBA's typos: a port past 65535, a 33-bit address
            conn.exec_driver_sql(
                "INSERT INTO RouteData (modid, cmdid, serverip, serverport) VALUES "
                "(5, 5, 1, 70000), (5, 5, 4294967296, 80), (5, 5, 2, 80), "
                "(1, 1, 3232235954, 9001)"
            )
            conn.exec_driver_sql("UPDATE RouteVersion SET version = version + 1 WHERE id = 1")
        pushed = {}
        for _ in range(2):
            msgid, msg = c.read()
            assert msgid == 2
            pushed[(msg.modid, msg.cmdid)] = hosts_of(msg)
        assert pushed == {
            (1, 1): [("192.168.1.177", 9000), ("192.168.1.178", 9001)],
            (5, 5): [("0.0.0.2", 80)],
        }
        wait_for(lambda: service.stats().invalid_rows == 2)


def test_dba_edit_with_change_rows_pushes_and_deletes_them(
    service: DnsService, engine: sqlalchemy.Engine
) -> None:
    with RouteConn(service.port) as c:
        assert c.get(4, 4) == []
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO RouteData (modid, cmdid, serverip, serverport) VALUES (4, 4, 1, 2)"
            )
            conn.exec_driver_sql(
                "INSERT INTO RouteChange (modid, cmdid, version) "
                "SELECT 4, 4, version + 1 FROM RouteVersion WHERE id = 1"
            )
            conn.exec_driver_sql("UPDATE RouteVersion SET version = version + 1 WHERE id = 1")
        assert hosts_of(c.read()[1]) == [("0.0.0.1", 2)]
        wait_for(lambda: RouteAdmin(engine).pending_changes() == [], what="rows deleted")


def test_bad_frames_never_hurt_the_service(service: DnsService) -> None:
    with RouteConn(service.port) as good:
        assert good.get(1, 1) == [("192.168.1.177", 9000)]
        # an unknown msgid is skipped, the connection stays
        good.send_raw(struct.pack("<ii", 99, 3) + b"abc")
        # an unparsable body is dropped, the connection stays
        good.send_raw(struct.pack("<ii", 1, 3) + b"\xff\xff\xff")
        # an empty body is a valid request for module (0, 0)
        good.send_raw(struct.pack("<ii", 1, 0))
        msgid, msg = good.read()
        assert msgid == 2 and (msg.modid, msg.cmdid, len(msg.host)) == (0, 0, 0)
        assert good.get(1, 1) == [("192.168.1.177", 9000)]

        for garbage in (
            struct.pack("<ii", 1, -1),
            struct.pack("<ii", 1, 65528),
            struct.pack("<ii", 1, 2**31 - 1) + b"x" * 100,
        ):
            with RouteConn(service.port) as bad:
                bad.send_raw(garbage)
                bad.sock.settimeout(10)
                assert bad.sock.recv(100) == b""  # closed by the service
        with RouteConn(service.port) as partial:  # a truncated frame, then gone
            partial.send_raw(struct.pack("<ii", 1, 50) + b"abc")
        with socket.create_connection(("127.0.0.1", service.port)) as raw:
            raw.sendall(bytes(range(256)) * 4)
        assert good.get(1, 1) == [("192.168.1.177", 9000)]
        stats = service.stats().server
        assert stats.frame_errors >= 3
        assert stats.unknown_msgids == 1
        assert stats.bad_bodies == 1


def test_oversized_module_is_truncated_not_fatal(
    service: DnsService, engine: sqlalchemy.Engine
) -> None:
    n = MAX_HOSTS_PER_MODULE + 300
    with engine.begin() as conn:  # past what RouteAdmin allows: only plain SQL gets here
        conn.exec_driver_sql(
            "INSERT INTO RouteData (modid, cmdid, serverip, serverport) VALUES (?, ?, ?, ?)",
            [(9, 9, 0xC0000000 + i, 65000) for i in range(n)],
        )
        conn.exec_driver_sql("UPDATE RouteVersion SET version = version + 1 WHERE id = 1")
    wait_for(lambda: service.stats().truncated_modules == 1, what="truncated reload")
    with RouteConn(service.port) as c:
        c.request(9, 9)
        msgid, msg = c.read()
        assert msgid == 2
        assert MAX_HOSTS_PER_MODULE <= len(msg.host) < n
        assert len(msg.SerializeToString()) <= 65527
        assert c.get(1, 1) == [("192.168.1.177", 9000)]  # the stream is intact


def test_subscription_cap_answers_without_subscribing(
    no_leaks: None, sqlite_url: str, engine: sqlalchemy.Engine
) -> None:
    from dataclasses import replace

    svc = DnsService(replace(config(sqlite_url), max_subscriptions=2))
    svc.start()
    try:
        with RouteConn(svc.port) as c:
            for k in range(5):
                assert c.get(k, k) == []
            stats = svc.stats().subscriptions
            assert (stats.subscriptions, stats.refused) == (2, 3)
    finally:
        svc.stop()


def test_stop_twice_closes_the_port(sqlite_url: str, no_leaks: None) -> None:
    svc = DnsService(config(sqlite_url))
    svc.start()
    port = svc.port
    svc.stop()
    svc.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_schema_failure_at_start_is_logged_and_the_load_still_retried(
    no_leaks: None,
    sqlite_url: str,
    engine: sqlalchemy.Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """init_schema reports a failure as StoreUnavailable (lars.dbengine); start() caught
    only SQLAlchemyError, so a database that refused the CREATE at start (SQLite, or
    [dns] create_schema on MySQL while it is down) ended start() instead of the load
    being retried as the docstring promises (the reporter already caught both)."""
    from lars.errors import StoreUnavailable

    RouteAdmin(engine).add_host(1, 1, "192.168.1.177", 9000)

    def refuse(_engine: sqlalchemy.Engine) -> None:
        raise StoreUnavailable("database x: Can't connect to MySQL server")

    monkeypatch.setattr("lars.dns.service.init_schema", refuse)
    svc = DnsService(config(sqlite_url))
    try:
        svc.start()
        assert svc.table.host_count == 1 and svc.port > 0
    finally:
        svc.stop()
    assert "cannot create the schema yet" in caplog.text
