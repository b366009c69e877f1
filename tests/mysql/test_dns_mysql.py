"""The route store, admin and service on the real MariaDB, and outages through a proxy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lars.db import metadata
from lars.dbengine import init_schema, make_engine, scratch_database
from lars.dns.service import DnsService
from lars.errors import StoreUnavailable
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import RouteConn, hosts_of, wait_for
from tests.integration.test_dns_service import config
from tests.integration.test_dns_store import (
    check_dba_plain_sql_edit,
    check_load_and_delete_exactly,
    check_snapshot_consistency,
)
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.mysql

# The file shipped inside the package (what `lars sql schema` prints).
SQL_FILE = Path(__file__).resolve().parents[2] / "lars" / "sql" / "lars_dns.sql"


def test_load_and_delete_exactly_mysql(mysql_url: str) -> None:
    check_load_and_delete_exactly(mysql_url)


def test_dba_plain_sql_edit_mysql(mysql_url: str) -> None:
    check_dba_plain_sql_edit(mysql_url)


def test_snapshot_consistency_mysql(mysql_url: str) -> None:
    check_snapshot_consistency(mysql_url)


def test_admin_on_mysql(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    try:
        init_schema(engine)
        admin = RouteAdmin(engine, clock=lambda: 1000.0)
        assert admin.add_host(1, 2, "255.255.255.255", 65535) == 1000
        assert admin.add_host(1, 2, "0.0.0.0", 1) == 1001
        assert [(e.ip, e.port) for e in admin.list_routes(1, 2)] == [
            ("0.0.0.0", 1),
            ("255.255.255.255", 65535),
        ]
        assert admin.del_module(1, 2) == 1002
        assert admin.pending_changes() == [(1, 2, 1000), (1, 2, 1001), (1, 2, 1002)]
    finally:
        engine.dispose()


def _schema(url: str) -> dict[str, object]:
    engine = create_engine(url)
    name = make_url(url).database
    try:
        with engine.connect() as conn:
            cols = conn.execute(
                text(
                    "SELECT TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, "
                    "COLUMN_KEY, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :s "
                    "ORDER BY TABLE_NAME, ORDINAL_POSITION"
                ),
                {"s": name},
            ).all()
            keys = conn.execute(
                text(
                    "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME "
                    "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = :s "
                    "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
                ),
                {"s": name},
            ).all()
            engines = conn.execute(
                text(
                    "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = :s ORDER BY TABLE_NAME"
                ),
                {"s": name},
            ).all()
    finally:
        engine.dispose()
    return {
        "columns": [tuple(r) for r in cols],
        "keys": [tuple(r) for r in keys],
        "engines": [tuple(r) for r in engines],
    }


@pytest.fixture
def second_mysql_url(mysql_server_url: str) -> Iterator[str]:
    with scratch_database(mysql_server_url, "lars_test") as url:
        yield url


def test_sql_file_and_lars_db_create_the_same_schema(mysql_url: str, second_mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    init_schema(engine)
    engine.dispose()
    lines = [ln for ln in SQL_FILE.read_text().splitlines() if not ln.strip().startswith("--")]
    statements = [s.strip() for s in "\n".join(lines).split(";")]
    from_file = make_engine(second_mysql_url)
    try:
        with from_file.begin() as conn:
            for stmt in statements:
                if not stmt or stmt.upper().startswith(("CREATE DATABASE", "USE ")):
                    continue  # the test databases stand in for lars_dns
                conn.exec_driver_sql(stmt)
    finally:
        from_file.dispose()
    a, b = _schema(mysql_url), _schema(second_mysql_url)
    assert a["columns"] and len(a["engines"]) == len(metadata.tables)  # type: ignore[arg-type]
    assert a == b


def test_outage_keeps_serving_and_recovers(mysql_url: str, no_leaks: None) -> None:
    direct = make_engine(mysql_url)
    init_schema(direct)
    admin = RouteAdmin(direct)
    admin.add_host(1, 1, "10.0.0.1", 80)
    target = make_url(mysql_url)
    with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
        via = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        svc = DnsService(config(via))
        svc.start()
        try:
            with RouteConn(svc.port) as c:
                assert c.get(1, 1) == [("10.0.0.1", 80)]
                proxy.cut()
                wait_for(lambda: svc.stats().poller.in_outage, what="outage noticed")
                assert svc.stats().poller.outages == 1
                admin.add_host(1, 1, "10.0.0.2", 81)  # committed while the service is cut off
                assert c.get(1, 1) == [("10.0.0.1", 80)]  # still served from the last table
                with RouteConn(svc.port) as newcomer:
                    assert newcomer.get(1, 1) == [("10.0.0.1", 80)]
                proxy.restore()
                msgid, msg = c.read(timeout=60)
                assert msgid == 2 and hosts_of(msg) == [("10.0.0.1", 80), ("10.0.0.2", 81)]
                wait_for(lambda: not svc.stats().poller.in_outage, what="recovery")
                assert svc.stats().poller.outages == 1
        finally:
            svc.stop()
    direct.dispose()


def test_does_not_listen_before_the_first_load(mysql_url: str, no_leaks: None) -> None:
    direct = make_engine(mysql_url)
    init_schema(direct)
    RouteAdmin(direct).add_host(1, 1, "10.0.0.1", 80)
    direct.dispose()
    target = make_url(mysql_url)
    with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
        proxy.cut()
        via = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        svc = DnsService(config(via))
        errors: list[BaseException] = []

        def start(service: DnsService) -> None:
            try:
                service.start()
            except BaseException as exc:
                errors.append(exc)

        starter = threading.Thread(target=start, args=(svc,))
        starter.start()
        try:
            wait_for(lambda: svc.stats().poller.in_outage, what="first load failing")
            assert starter.is_alive() and svc.port == 0  # not listening
            proxy.restore()
            starter.join(60)
            assert not errors and not starter.is_alive()
            with RouteConn(svc.port) as c:
                assert c.get(1, 1) == [("10.0.0.1", 80)]
        finally:
            svc.stop()
            starter.join(10)

        # a stop() during the wait makes start() give up with StoreUnavailable
        proxy.cut()
        svc2 = DnsService(config(via))
        starter = threading.Thread(target=start, args=(svc2,))
        starter.start()
        try:
            wait_for(lambda: svc2.stats().poller.in_outage, what="first load failing")
        finally:
            svc2.stop()
            starter.join(20)
        assert not starter.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], StoreUnavailable)
        assert svc2.port == 0


def test_store_unavailable_from_admin_when_cut(mysql_url: str) -> None:
    target = make_url(mysql_url)
    with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
        proxy.cut()
        via = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine: sqlalchemy.Engine = make_engine(via)
        try:
            with pytest.raises(StoreUnavailable):
                RouteAdmin(engine).add_host(1, 1, "1.1.1.1", 1)
        finally:
            engine.dispose()
