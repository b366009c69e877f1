"""Reporter readiness while MariaDB is cut: ready while buffering within bounds, not ready
once a writer is full, ready again (and everything written) when the database returns."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from lars.obs.listen import MetricsConfig
from lars.reactor import LoopThread
from lars.reporter.metrics import reporter_metrics_server
from lars.reporter.service import ReporterService
from tests.integration.test_reporter_service import make_config, report_frame, wait_for
from tests.obs_util import get_json, scrape, value
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.mysql


@pytest.fixture(scope="module", autouse=True)
def _uvloop_warmed() -> Iterator[None]:
    thread = LoopThread("warm-up")
    thread.start()
    thread.stop()
    yield


def test_reporter_readiness_follows_its_buffer_while_the_database_is_cut(
    no_leaks: None, mysql_url: str
) -> None:
    target = make_url(mysql_url)
    with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
        host, port = proxy.address
        via = target.set(host=host, port=port).render_as_string(hide_password=False)
        svc = ReporterService(make_config(via, writers=1, max_pending=4, batch_rows=1))
        metrics = reporter_metrics_server(svc, MetricsConfig(listen=("127.0.0.1", 0)))
        assert metrics is not None
        metrics.start()
        svc.start()
        ready = metrics.url + "/readyz"
        try:
            with socket.create_connection(("127.0.0.1", svc.port)) as conn:
                conn.sendall(report_frame(1, 1, 7, 1, [(1, 80, 1, 0, False)]))
                wait_for(lambda: svc.stats().written == 1, what="the first row")
                assert get_json(ready)[0] == 200
                proxy.cut()
                conn.sendall(report_frame(2, 1, 7, 1, [(1, 80, 1, 0, False)]))
                wait_for(lambda: not svc.stats().db_available, what="the outage")
                assert value(scrape(metrics.url), "lars_reporter_database_up") == 0
                code, body = get_json(ready)
                assert code == 200, body  # buffering: 1 of 4 rows held
                conn.sendall(report_frame(3, 1, 7, 1, [(i, 80, 1, 0, False) for i in (1, 2, 3)]))
                wait_for(lambda: svc.stats().queue_depth == (4,), what="a full writer")
                code, body = get_json(ready)
                assert code == 503 and "full (4 rows)" in body["reasons"][0]
                proxy.restore()
                wait_for(lambda: svc.stats().written == 5, what="the buffer written")
                wait_for(lambda: get_json(ready)[0] == 200, what="ready again")
                assert value(scrape(metrics.url), "lars_reporter_database_up") == 1
        finally:
            svc.stop()
            metrics.stop()
