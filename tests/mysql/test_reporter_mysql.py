"""The reporter on the real MariaDB: upsert semantics, order, and a database outage."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from lars.dbengine import init_schema
from lars.protocol import dotted_to_uint, dotted_to_wire
from lars.reactor import LoopThread
from lars.reporter.service import ReporterService
from lars.reporter.upsert import BatchUpsert
from tests.integration.test_reporter_service import (
    make_config,
    report_frame,
    table_rows,
    wait_for,
)
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.mysql

ORDER_TRIGGER = """
CREATE TRIGGER order_check BEFORE UPDATE ON ServerCallStatus FOR EACH ROW
BEGIN
  IF NEW.succ_cnt < OLD.succ_cnt THEN
    INSERT INTO backwards VALUES (NEW.modid, OLD.succ_cnt, NEW.succ_cnt);
  END IF;
END
"""


@pytest.fixture(scope="module", autouse=True)
def _uvloop_warmed() -> None:
    thread = LoopThread("warm-up")
    thread.start()
    thread.stop()


@pytest.fixture
def db(mysql_url: str) -> Iterator[Engine]:
    engine = create_engine(mysql_url)
    try:
        yield engine
    finally:
        engine.dispose()


def via(proxy: CuttableProxy, url: str) -> str:
    host, port = proxy.address
    return make_url(url).set(host=host, port=port).render_as_string(hide_password=False)


def test_upsert_inserts_then_updates_on_mariadb(no_leaks: None, mysql_url: str, db: Engine) -> None:
    service = ReporterService(make_config(mysql_url))
    service.start()
    ip = dotted_to_wire("250.1.2.3")
    caller = dotted_to_wire("192.168.1.177")
    try:
        with socket.create_connection(("127.0.0.1", service.port)) as sock:
            sock.sendall(report_frame(2**31 - 1, 0, caller, 2**32 - 1, [(ip, 65535, 1, 2, True)]))
            wait_for(lambda: len(table_rows(db)) == 1, what="the insert")
            sock.sendall(report_frame(2**31 - 1, 0, caller, 5, [(ip, 65535, 2**31 - 1, 0, False)]))
            wait_for(lambda: service.stats().written == 2, what="the update")
    finally:
        service.stop()
    assert table_rows(db) == {
        (2**31 - 1, 0, dotted_to_uint("250.1.2.3"), 65535, 3232235953): (2**31 - 1, 0, 5, "0"),
    }


class Agents:
    """Agent-like senders: each caller reports every module's 5 hosts per round."""

    def __init__(self, port: int, callers: int, modules: int) -> None:
        self.port = port
        self.modules = modules
        self.last = dict.fromkeys(range(1, callers + 1), 0)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(c,)) for c in self.last]

    def __enter__(self) -> Agents:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def _run(self, caller: int) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            seq = 0
            while not self.stop.is_set():
                seq += 1
                hosts = [(h, 80, seq, seq % 7, seq % 2 == 0) for h in range(5)]
                sock.sendall(
                    b"".join(report_frame(m, 9, caller, seq, hosts) for m in range(self.modules))
                )
                self.last[caller] = seq
                time.sleep(0.01)

    def expected(self) -> dict[tuple[int, ...], tuple[object, ...]]:
        return {
            (m, 9, h, 80, caller): (seq, seq % 7, seq, "1" if seq % 2 == 0 else "0")
            for caller, seq in self.last.items()
            for m in range(self.modules)
            for h in range(5)
        }


def test_outage_during_load_ends_with_the_latest_value_of_every_key(
    no_leaks: None, mysql_url: str, db: Engine
) -> None:
    init_schema(db)
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE backwards (modid INT, old INT, new INT)"))
        conn.execute(text(ORDER_TRIGGER))
    modules, callers = 80, 3
    keys = modules * callers * 5
    with CuttableProxy(("127.0.0.1", 3306)) as proxy:
        service = ReporterService(make_config(via(proxy, mysql_url), batch_rows=500))
        service.start()
        try:
            with Agents(service.port, callers, modules) as agents:
                wait_for(lambda: service.stats().written >= keys, what="writes before the cut")
                proxy.cut()
                cut_at = time.monotonic()
                wait_for(lambda: service.stats().db_errors > 0, what="the outage to be seen")
                during = service.stats().received
                depth_max = 0

                def grown() -> bool:
                    nonlocal depth_max
                    depth_max = max(depth_max, sum(service.stats().queue_depth))
                    outage = time.monotonic() - cut_at
                    return outage > 1.5 and service.stats().received > during + 5 * keys

                wait_for(grown, what="reports received during the outage")
                written_in_outage = service.stats().written
                proxy.restore()
                wait_for(
                    lambda: service.stats().written > written_in_outage + keys,
                    what="writes after the outage",
                )
            wait_for(lambda: sum(service.stats().queue_depth) == 0, what="queues drained")
            assert table_rows(db) == agents.expected()
        finally:
            service.stop()
    stats = service.stats()
    # Coalesced: one waiting row per key, plus at most one batch in flight per writer.
    assert depth_max <= keys + 3 * 500
    assert depth_max > 0
    assert stats.coalesced > 0
    assert stats.dropped == 0
    with db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM backwards")).scalar() == 0


def test_database_down_at_start_then_back_keeps_a_bounded_buffer(
    no_leaks: None, mysql_url: str, db: Engine
) -> None:
    """Started with the database unreachable: rows wait (bounded, overflow counted) and
    the accepted ones are written, table created, once the database is reachable."""
    with CuttableProxy(("127.0.0.1", 3306)) as proxy:
        proxy.cut()
        service = ReporterService(make_config(via(proxy, mysql_url), writers=1, max_pending=40))
        service.start()
        try:
            with socket.create_connection(("127.0.0.1", service.port)) as sock:
                for m in range(10):  # 50 keys for a 40-key buffer
                    sock.sendall(report_frame(m, 1, 1, 1, [(h, 80, 1, 0, False) for h in range(5)]))
                for m in range(8):  # newer values of the accepted keys still get in
                    sock.sendall(report_frame(m, 1, 1, 2, [(h, 80, 2, 0, False) for h in range(5)]))
                wait_for(lambda: service.stats().reports == 18, what="reports read")
            stats = service.stats()
            assert stats.overflow == 10
            assert stats.queue_depth == (40,)
            assert stats.written == 0
            proxy.restore()
            wait_for(lambda: service.stats().written == 40, what="the buffer written")
        finally:
            service.stop()
    rows = table_rows(db)
    assert len(rows) == 40
    assert {v[0] for v in rows.values()} == {2}
    assert service.stats().dropped == 10


def test_batch_upsert_renders_one_multi_row_statement_for_the_server(
    no_leaks: None, mysql_url: str, db: Engine
) -> None:
    init_schema(db)
    upsert = BatchUpsert(db)
    with db.connect() as conn:
        with conn.begin():
            upsert.execute(
                conn, [(1, 1, 2**32 - 1, 80, 7, 1, 0, 5, "1"), (1, 1, 2, 80, 7, 2, 0, 5, "0")]
            )
        sql = upsert.render([(1, 1, 2, 80, 7, 3, 4, 6, "1")])
        assert sql.startswith("INSERT INTO `ServerCallStatus` (modid, cmdid")
        assert "VALUES (1,1,2,80,7,3,4,6,'1') ON DUPLICATE KEY UPDATE" in sql
        with conn.begin():
            conn.exec_driver_sql(sql)
    assert table_rows(db) == {
        (1, 1, 2**32 - 1, 80, 7): (1, 0, 5, "1"),
        (1, 1, 2, 80, 7): (3, 4, 6, "1"),
    }
    with pytest.raises(KeyError):
        upsert.render([(1, 1, 2, 80, 7, 3, 4, 6, "1'); DROP TABLE x; --")])
