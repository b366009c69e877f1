"""The reporter on MariaDB behind a proxy that freezes (stops forwarding, closes nothing):
the outage is logged within seconds with its cause, the recovery once with its duration,
and after the thaw every key's latest value is in ServerCallStatus."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from lars.dbengine import init_schema
from lars.reporter.service import ReporterService
from tests.integration.test_reporter_service import make_config, table_rows, wait_for
from tests.mysql.test_reporter_mysql import Agents, via
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.mysql

FREEZE = 6.0


@pytest.fixture
def db(mysql_url: str) -> Iterator[Engine]:
    engine = create_engine(mysql_url)
    try:
        yield engine
    finally:
        engine.dispose()


def records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def test_frozen_database_is_logged_within_seconds_and_nothing_is_lost(
    no_leaks: None, mysql_url: str, db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Measured defect: the reporter logged its first error ~60 s into a freeze (the 60 s
    PyMySQL read timeout stacked with the pool's pre-ping and reconnect)."""
    caplog.set_level(logging.INFO)
    init_schema(db)
    modules, callers = 40, 2
    keys = modules * callers * 5
    with CuttableProxy(("127.0.0.1", 3306)) as proxy:
        service = ReporterService(make_config(via(proxy, mysql_url), batch_rows=500))
        service.start()
        try:
            with Agents(service.port, callers, modules) as agents:
                wait_for(lambda: service.stats().written >= keys, what="writes before the freeze")
                proxy.freeze()
                frozen_at = time.time()
                wait_for(lambda: records(caplog, "database OUTAGE"), what="the outage logged")
                outage = records(caplog, "database OUTAGE")
                assert outage[0].created - frozen_at < 5.0
                assert "no answer" in outage[0].getMessage()  # the cause
                assert not service.stats().db_available
                time.sleep(max(0.0, frozen_at + FREEZE - time.time()))
                proxy.thaw()
                wait_for(lambda: records(caplog, "database back"), what="the recovery logged")
                written = service.stats().written
                wait_for(lambda: service.stats().written > written + keys, what="writes after")
            wait_for(lambda: sum(service.stats().queue_depth) == 0, what="queues drained")
            assert table_rows(db) == agents.expected()
            stats = service.stats()
            assert stats.db_available and stats.db_outages == 1
            assert stats.dropped == 0 and stats.coalesced > 0
        finally:
            service.stop()
    assert len(records(caplog, "database OUTAGE")) == 1
    back = records(caplog, "database back")
    assert len(back) == 1
    assert "outage" in back[0].getMessage()
