"""The route service with RouteHostMeta (SQLite): drains and weights pushed, metrics, guard."""

from __future__ import annotations

import sqlalchemy
from sqlalchemy import update

from lars.db import route_host_meta
from lars.dbengine import init_schema, make_engine
from lars.dns.metrics import dns_metrics_server
from lars.dns.service import DnsService
from lars.obs.listen import MetricsConfig
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import RouteConn, hosts_of, wait_for
from tests.integration.test_obs_dns import config
from tests.obs_util import scrape, value


def test_drain_weight_and_undrain_are_pushed_and_counted(no_leaks: None, sqlite_url: str) -> None:
    engine: sqlalchemy.Engine = make_engine(sqlite_url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    for ip in ("10.0.0.1", "10.0.0.2"):
        admin.add_host(1, 1, ip, 80)
    svc = DnsService(config(sqlite_url))
    metrics = dns_metrics_server(svc, MetricsConfig(listen=("127.0.0.1", 0)))
    assert metrics is not None
    metrics.start()
    svc.start()
    try:
        with RouteConn(svc.port) as conn:
            assert conn.get(1, 1) == [("10.0.0.1", 80), ("10.0.0.2", 80)]
            admin.drain(1, 1, "10.0.0.1", 80)
            msgid, msg = conn.read()
            assert msgid == 2 and hosts_of(msg) == [("10.0.0.2", 80)]  # pushed without it
            assert svc.stats().drained_hosts == 1
            assert value(scrape(metrics.url), "lars_dns_drained_hosts") == 1
            admin.set_weight(1, 1, "10.0.0.2", 80, 9)  # a weight-only change is pushed too
            _, msg = conn.read()
            assert [(h.port, h.weight) for h in msg.host] == [(80, 9)]
            admin.undrain(1, 1, "10.0.0.1", 80)
            _, msg = conn.read()
            assert [(h.port, h.weight) for h in msg.host] == [(80, 0), (80, 9)]
            assert svc.stats().drained_hosts == 0
    finally:
        svc.stop()
        metrics.stop()
        engine.dispose()


def test_a_mass_drain_by_sql_is_held_by_the_guard(no_leaks: None, sqlite_url: str) -> None:
    """A drain is a host removal for the push-empty guard: draining every host of many
    modules with one UPDATE is held like DELETE FROM RouteData."""
    engine: sqlalchemy.Engine = make_engine(sqlite_url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    for modid in (1, 2, 3):
        for ip in ("10.0.0.1", "10.0.0.2"):
            admin.add_host(modid, 1, ip, 80)
            admin.set_weight(modid, 1, ip, 80, 2)  # gives every host a RouteHostMeta row
    svc = DnsService(config(sqlite_url))
    svc.start()
    try:
        with RouteConn(svc.port) as conn:
            assert len(conn.get(1, 1)) == 2
            with engine.begin() as db:
                db.execute(update(route_host_meta).values(enabled=False))
            version = admin.current_version()
            admin.add_host(9, 9, "10.9.9.9", 99)  # bumps the version: a reload
            wait_for(lambda: svc.stats().version > version or svc.stats().held is not None)
            wait_for(lambda: svc.stats().held is not None, what="a held table")
            assert len(conn.get(1, 1)) == 2  # the last good table is still served
    finally:
        svc.stop()
        engine.dispose()
