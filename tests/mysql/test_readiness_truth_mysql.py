"""Readiness that tells the truth on MariaDB (issue 19, item 6): a reporter started while
the database is cut is not ready until the database answers, and becomes ready without
a single report (its idle writers probe); a route service whose RouteData table is
renamed away names the missing table, keeps serving, and is ready again once it is back."""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from lars.dbengine import init_schema, make_engine
from lars.dns.metrics import dns_metrics_server
from lars.dns.service import DnsConfig, DnsService
from lars.obs.listen import MetricsConfig
from lars.obs.status import render_status
from lars.reactor import ReactorConfig
from lars.reporter.metrics import reporter_metrics_server
from lars.reporter.service import ReporterConfig, ReporterService
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import RouteConn, wait_for
from tests.obs_util import get_json
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.mysql

LISTEN = MetricsConfig(listen=("127.0.0.1", 0))


def test_reporter_down_at_start_then_ready_when_the_database_answers(
    mysql_url: str, no_leaks: None
) -> None:
    target = make_url(mysql_url)
    with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
        proxy.cut()
        via = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        svc = ReporterService(
            ReporterConfig(
                db_url=via,
                reactor=ReactorConfig(ip="127.0.0.1", port=0),
                connect_timeout=0.5,
                stats_interval=0,
            )
        )
        metrics = reporter_metrics_server(svc, LISTEN)
        assert metrics is not None
        metrics.start()
        svc.start()
        try:
            code, body = get_json(metrics.url + "/readyz")
            assert code == 503 and body["reasons"][0].startswith(
                "database unavailable since start"
            ), body
            _, doc = get_json(metrics.url + "/status")
            assert "database DOWN" in render_status(doc)
            proxy.restore()
            wait_for(lambda: get_json(metrics.url + "/readyz")[0] == 200, timeout=60, what="ready")
            wait_for(lambda: get_json(metrics.url + "/status")[1]["database_up"], timeout=60)
            _, doc = get_json(metrics.url + "/status")
            assert svc.stats().received == 0  # no report was needed to notice it
            assert "database up, no commit yet" in render_status(doc)
        finally:
            svc.stop()
            metrics.stop()


def test_dns_names_a_renamed_table_and_keeps_serving(mysql_url: str, no_leaks: None) -> None:
    engine = make_engine(mysql_url)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 1, "10.0.0.1", 80)
    svc = DnsService(
        DnsConfig(
            db_url=mysql_url,
            reactor=ReactorConfig(ip="127.0.0.1", port=0),
            poll_interval=0.1,
            retry_initial=0.05,
            retry_max=0.2,
            reload_interval=1.0,
        )
    )
    metrics = dns_metrics_server(svc, LISTEN)
    assert metrics is not None
    metrics.start()
    svc.start()
    try:
        wait_for(lambda: get_json(metrics.url + "/readyz")[0] == 200, what="ready")
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("RENAME TABLE RouteData TO RouteData_moved"))

        def named() -> bool:
            code, body = get_json(metrics.url + "/readyz")
            return code == 503 and body["reasons"][0].startswith(
                "table RouteData is missing in the database"
            )

        wait_for(named, timeout=30, what="/readyz naming RouteData")
        with RouteConn(svc.port) as conn:
            assert conn.get(1, 1) == [("10.0.0.1", 80)]
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("RENAME TABLE RouteData_moved TO RouteData"))
        wait_for(lambda: get_json(metrics.url + "/readyz")[0] == 200, timeout=30, what="ready")
    finally:
        svc.stop()
        metrics.stop()
        engine.dispose()
