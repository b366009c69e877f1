"""Readiness that tells the truth (issue 19, item 6), on real services and listeners:

- a reporter started while its database is down logged "database unavailable at start"
  yet answered /readyz 200 and `lars status` said "database up, no commit yet";
- after `DROP TABLE RouteData` the route service keeps serving (right) but /readyz asked
  whether the database was reachable instead of naming the missing table.
"""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy

from lars.dbengine import init_schema, make_engine
from lars.dns.metrics import dns_metrics_server
from lars.dns.service import DnsConfig, DnsService
from lars.obs.listen import MetricsConfig
from lars.obs.status import render_status
from lars.reactor import ReactorConfig
from lars.reporter.metrics import reporter_metrics_server
from lars.reporter.service import ReporterConfig, ReporterService
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.integration.dns_wire import RouteConn, wait_for
from tests.obs_util import get_json

LISTEN = MetricsConfig(listen=("127.0.0.1", 0))


def test_reporter_started_while_the_database_is_down_is_not_ready(no_leaks: None) -> None:
    closed = free_port()  # nothing listens here: every connect is refused
    svc = ReporterService(
        ReporterConfig(
            db_url=f"mysql+pymysql://root@127.0.0.1:{closed}/lars_dns",
            reactor=ReactorConfig(ip="127.0.0.1", port=0),
            writers=2,
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
        assert code == 503, body
        [reason] = body["reasons"]
        assert reason.startswith("database unavailable since start: ")
        assert "Can't connect" in reason or "2003" in reason
        code, doc = get_json(metrics.url + "/status")
        assert code == 200 and doc["database_up"] is False
        text = render_status(doc)
        assert "database up" not in text
        assert "database DOWN (" in text and "no commit yet" in text
        # `lars status` itself: exit 1 (answers, not ready) and the reason on its first line
        env = {k: v for k, v in os.environ.items() if k != "LARS_METRICS_LISTEN"}
        out = subprocess.run(
            [sys.executable, "-m", "lars", "status", "--metrics", metrics.url.split("//")[1]],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert out.returncode == 1, out.stderr
        assert out.stdout.splitlines()[0].startswith(
            "lars reporter: NOT READY: database unavailable since start"
        )
        assert "database DOWN" in out.stdout
        # the idle writers keep probing: still down, counted once as an outage
        wait_for(lambda: svc.stats().db_errors == 0 and svc.health.outages == 1)
    finally:
        svc.stop()
        metrics.stop()


def test_dns_names_a_dropped_table_and_keeps_serving(no_leaks: None, sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    admin.add_host(1, 1, "10.0.0.1", 80)
    svc = DnsService(
        DnsConfig(
            db_url=sqlite_url,
            reactor=ReactorConfig(ip="127.0.0.1", port=0),
            poll_interval=0.05,
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
            conn.execute(sqlalchemy.text("DROP TABLE RouteData"))

        def named() -> bool:
            code, body = get_json(metrics.url + "/readyz")
            return code == 503 and body["reasons"][0].startswith(
                "table RouteData is missing in the database"
            )

        wait_for(named, timeout=30, what="/readyz naming the table")
        _, body = get_json(metrics.url + "/readyz")
        assert "reachable" not in body["reasons"][0], body
        with RouteConn(svc.port) as conn:  # the last table is still served
            assert conn.get(1, 1) == [("10.0.0.1", 80)]
        _, doc = get_json(metrics.url + "/status")
        assert "NOT READY: table RouteData is missing" in render_status(doc)
        init_schema(engine)  # the table is back (empty): ready again
        wait_for(lambda: get_json(metrics.url + "/readyz")[0] == 200, timeout=30, what="ready")
    finally:
        svc.stop()
        metrics.stop()
        engine.dispose()
