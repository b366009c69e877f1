"""The reporter over real loopback TCP into SQLite: upserts, order, flush, hostile input."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine, create_engine, select, text

from lars.db import server_call_status
from lars.protocol import MsgId, dotted_to_wire, lars_pb2
from lars.reactor import LoopThread, ReactorConfig, encode
from lars.reporter.service import ReporterConfig, ReporterService

Host = tuple[int, int, int, int, bool]  # wire ip, port, succ, err, overload


def report_frame(modid: int, cmdid: int, caller: int, ts: int, hosts: list[Host]) -> bytes:
    msg = lars_pb2.ReportStatusRequest(modid=modid, cmdid=cmdid, caller=caller, ts=ts)
    for ip, port, succ, err, overload in hosts:
        msg.results.add(ip=ip, port=port, succ=succ, err=err, overload=overload)
    return encode(MsgId.REPORT_STATUS_REQUEST, msg.SerializeToString())


def wait_for(cond: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def table_rows(engine: Engine) -> dict[tuple[int, ...], tuple[object, ...]]:
    t = server_call_status
    with engine.connect() as conn:
        result = conn.execute(select(t))
        return {tuple(r[:5]): tuple(r[5:]) for r in result}


def make_config(db_url: str, **kw: object) -> ReporterConfig:
    base = ReporterConfig(
        db_url=db_url,
        reactor=ReactorConfig(ip="127.0.0.1", port=0),
        batch_interval=0.01,
        stats_interval=0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module", autouse=True)
def _uvloop_warmed() -> None:
    """The first uvloop loop of a process opens a pipe for good; open it before no_leaks."""
    thread = LoopThread("warm-up")
    thread.start()
    thread.stop()


@pytest.fixture
def reporter(sqlite_url: str, no_leaks: None) -> Iterator[ReporterService]:
    service = ReporterService(make_config(sqlite_url))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine(sqlite_url)
    try:
        yield engine
    finally:
        engine.dispose()


def connect(service: ReporterService) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=10)


def test_report_inserts_then_updates_the_same_key(reporter: ReporterService, db: Engine) -> None:
    ip = dotted_to_wire("192.168.1.177")
    caller = dotted_to_wire("10.1.2.3")
    with connect(reporter) as sock:
        sock.sendall(
            report_frame(7, 1, caller, 1000, [(ip, 8080, 3, 1, False), (1, 80, 0, 0, True)])
        )
        wait_for(lambda: len(table_rows(db)) == 2, what="two rows")
        sock.sendall(report_frame(7, 1, caller, 1001, [(ip, 8080, 30, 10, True)]))
        wait_for(lambda: reporter.stats().written == 3, what="the update")
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # no reply: ReportStatusRequest is one-way
    rows = table_rows(db)
    assert rows == {
        (7, 1, 3232235953, 8080, 167838211): (30, 10, 1001, "1"),
        (7, 1, 1, 80, 167838211): (0, 0, 1000, "1"),
    }
    stats = reporter.stats()
    assert (stats.reports, stats.received, stats.dropped) == (2, 3, 0)
    assert stats.batches >= 2
    assert len(stats.queue_depth) == 3


def test_each_module_is_written_in_order_under_load(sqlite_url: str, db: Engine) -> None:
    """A trigger records any update that moves a key's counter backwards."""
    with db.begin() as conn:
        from lars.dbengine import init_schema

        init_schema(db)
        conn.execute(text("CREATE TABLE backwards (modid INTEGER, old INTEGER, new INTEGER)"))
        conn.execute(
            text(
                "CREATE TRIGGER order_check BEFORE UPDATE ON ServerCallStatus "
                "WHEN NEW.succ_cnt < OLD.succ_cnt BEGIN "
                "INSERT INTO backwards VALUES (NEW.modid, OLD.succ_cnt, NEW.succ_cnt); END"
            )
        )
    service = ReporterService(make_config(sqlite_url, batch_rows=200, batch_interval=0.002))
    service.start()
    rounds, modules, callers = 40, 60, 3
    try:

        def agent(caller: int) -> None:
            with connect(service) as sock:
                for seq in range(1, rounds + 1):
                    frames = [
                        report_frame(m, 1, caller, seq, [(h, 80, seq, 0, False) for h in range(5)])
                        for m in range(modules)
                    ]
                    sock.sendall(b"".join(frames))

        threads = [threading.Thread(target=agent, args=(c,)) for c in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = rounds * modules * callers * 5
        wait_for(lambda: service.stats().received == total, what="all rows received")
        wait_for(lambda: sum(service.stats().queue_depth) == 0, what="queues drained")
    finally:
        service.stop()
    rows = table_rows(db)
    assert len(rows) == modules * callers * 5
    assert {v[0] for v in rows.values()} == {rounds}
    with db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM backwards")).scalar() == 0
    stats = service.stats()
    assert stats.written + stats.coalesced == total


def test_stop_flushes_rows_still_waiting_for_a_batch(sqlite_url: str, db: Engine) -> None:
    service = ReporterService(make_config(sqlite_url, batch_rows=10**6, batch_interval=3600.0))
    service.start()
    try:
        with connect(service) as sock:
            for m in range(50):
                sock.sendall(report_frame(m, 2, 5, 77, [(9, 90, m, 1, False)]))
        wait_for(lambda: service.stats().received == 50, what="rows received")
        assert service.stats().written == 0
    finally:
        service.stop()
    assert service.stats().written == 50
    rows = table_rows(db)
    assert len(rows) == 50
    assert rows[(49, 2, 9, 90, 5)] == (49, 1, 77, "0")


HOSTILE = [
    b"\xde\xad\xbe\xef" * 4,  # garbage: a huge msglen closes the connection
    struct.pack("<ii", 3, -1),  # negative msglen
    struct.pack("<ii", 3, 65528),  # one past the largest body
    struct.pack("<ii", 3, 100) + b"\x01" * 10,  # truncated, then the peer leaves
    encode(3, b"\xff\xff\xff\xff\x0f"),  # unparsable body
    encode(99, b"hello"),  # unknown msgid
    encode(1, b""),  # a msgid the reporter does not serve
    encode(3, b""),  # empty body: a report without results
    report_frame(-1, 1, 0, 1, [(1, 80, 1, 1, False)]),  # negative modid
    report_frame(1, 1, 0, 1, [(1, 0, 1, 1, False), (1, 70000, 1, 1, False)]),  # bad ports
    report_frame(1, 1, 0, 1, [(1, 80, 2**32 - 1, 0, False)]),  # counter beyond int32
]


def test_hostile_frames_are_dropped_and_counted(reporter: ReporterService, db: Engine) -> None:
    for payload in HOSTILE:
        with connect(reporter) as sock:
            sock.sendall(payload)
    with connect(reporter) as sock:  # one connection carrying several bad frames, then a good one
        sock.sendall(b"".join(HOSTILE[4:]) + report_frame(3, 3, 3, 3, [(3, 3, 3, 3, False)]))
        wait_for(lambda: reporter.stats().written == 1, what="the good row")
    stats = reporter.stats()
    assert stats.bad_bodies == 2
    assert stats.invalid == 2 * (1 + 2 + 1)
    assert stats.dropped == stats.invalid + stats.bad_bodies
    assert table_rows(db) == {(3, 3, 3, 3, 3): (3, 3, 3, "0")}
    wait_for(lambda: reporter.stats().connections == 0, what="hostile connections closed")
