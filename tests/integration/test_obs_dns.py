"""The route service's metrics listener on SQLite: counters move by the traffic sent."""

from __future__ import annotations

import sqlalchemy

from lars.dbengine import init_schema, make_engine
from lars.dns.metrics import dns_metrics_server
from lars.dns.service import DnsConfig, DnsService
from lars.obs.listen import MetricsConfig
from lars.reactor import ReactorConfig
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import RouteConn, hosts_of, wait_for
from tests.obs_util import delta, get_json, names, scrape, value


def config(url: str) -> DnsConfig:
    return DnsConfig(
        db_url=url,
        reactor=ReactorConfig(ip="127.0.0.1", port=0, threads=2),
        poll_interval=0.05,
        reload_interval=30.0,
        retry_initial=0.05,
        retry_max=0.2,
    )


def test_dns_counters_readiness_and_status(no_leaks: None, sqlite_url: str) -> None:
    engine: sqlalchemy.Engine = make_engine(sqlite_url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    admin.add_host(1, 1, "10.0.0.1", 80)
    svc = DnsService(config(sqlite_url))
    metrics = dns_metrics_server(svc, MetricsConfig(listen=("127.0.0.1", 0)))
    assert metrics is not None
    metrics.start()
    try:
        code, body = get_json(metrics.url + "/readyz")
        assert code == 503 and body["reasons"] == ["route table not loaded yet"]
        before = scrape(metrics.url)
        assert value(before, "lars_dns_table_loaded") == 0
        svc.start()
        wait_for(lambda: get_json(metrics.url + "/readyz")[0] == 200, what="ready")
        with RouteConn(svc.port) as a, RouteConn(svc.port) as b:
            assert a.get(1, 1) == [("10.0.0.1", 80)]
            assert b.get(1, 1) == [("10.0.0.1", 80)]
            assert b.get(2, 2) == []
            wait_for(lambda: svc.stats().subscriptions.subscriptions == 3)
            mid = scrape(metrics.url)
            admin.add_host(1, 1, "10.0.0.2", 81)  # a route change: pushed to a and b
            for conn in (a, b):
                msgid, msg = conn.read(timeout=10)
                assert msgid == 2 and len(hosts_of(msg)) == 2
            wait_for(lambda: svc.stats().push_rounds >= 1)
            a.send_raw(b"\x63\x00\x00\x00\x00\x00\x00\x00")  # msgid 99: unknown, skipped
            assert a.get(3, 3) == []  # a barrier: the unknown frame was handled first
            after = scrape(metrics.url)
        assert value(mid, "lars_dns_modules") == 1 and value(mid, "lars_dns_hosts") == 1
        assert value(after, "lars_dns_hosts") == 2
        assert value(after, "lars_dns_route_version") == admin.current_version()
        assert value(mid, "lars_dns_subscribers") == 2
        assert value(after, "lars_dns_subscriptions") == 4
        assert value(after, "lars_dns_connections") == 2
        assert delta(after, mid, "lars_dns_reloads_total") == 1
        assert delta(after, mid, "lars_dns_reload_duration_seconds_count") == 1
        assert delta(after, mid, "lars_dns_pushes_total") == 2
        assert delta(after, mid, "lars_dns_pushed_modules_total") == 1
        assert delta(after, mid, "lars_dns_push_duration_seconds_count") == 1
        assert delta(after, mid, "lars_dns_frames_dropped_total", reason="unknown_msgid") == 1
        assert delta(after, mid, "lars_dns_frames_received_total") == 2
        assert value(after, "lars_dns_database_up") == 1
        assert 0 <= value(after, "lars_dns_last_poll_age_seconds") < 5
        assert "lars_dns_push_duration_seconds_bucket" in names(after)
        code, status = get_json(metrics.url + "/status")
        assert code == 200 and status["daemon"] == "dns" and status["hosts"] == 2
        assert status["ready"]["ready"] is True
        assert status["process"] is None  # not a child of `lars dns --processes N`
    finally:
        svc.stop()
        metrics.stop()
        engine.dispose()
