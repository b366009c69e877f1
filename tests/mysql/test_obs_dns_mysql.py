"""Route service readiness follows its database: cut through a proxy, then restored."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from lars.dbengine import init_schema, make_engine
from lars.dns.metrics import dns_metrics_server
from lars.dns.service import DnsConfig, DnsService
from lars.obs.listen import MetricsConfig
from lars.reactor import ReactorConfig
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import RouteConn, wait_for
from tests.obs_util import get_json, scrape, value
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.mysql


def test_readiness_flips_when_the_database_is_cut_and_back(
    mysql_url: str, no_leaks: None
) -> None:
    direct = make_engine(mysql_url)
    init_schema(direct)
    RouteAdmin(direct).add_host(1, 1, "10.0.0.1", 80)
    target = make_url(mysql_url)
    with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
        via = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        svc = DnsService(
            DnsConfig(
                db_url=via,
                reactor=ReactorConfig(ip="127.0.0.1", port=0),
                poll_interval=0.1,
                retry_initial=0.05,
                retry_max=0.2,
            )
        )
        metrics = dns_metrics_server(svc, MetricsConfig(listen=("127.0.0.1", 0)))
        assert metrics is not None
        metrics.start()
        svc.start()
        try:
            ready = metrics.url + "/readyz"
            wait_for(lambda: get_json(ready)[0] == 200, what="ready")
            assert value(scrape(metrics.url), "lars_dns_database_up") == 1
            proxy.cut()
            wait_for(lambda: get_json(ready)[0] == 503, timeout=30, what="not ready")
            _, body = get_json(ready)
            assert body["ready"] is False and "version poll" in body["reasons"][0]
            samples = scrape(metrics.url)
            assert value(samples, "lars_dns_database_up") == 0
            assert value(samples, "lars_dns_last_poll_age_seconds") > 0.3
            assert value(samples, "lars_dns_database_outages_total") == 1
            with RouteConn(svc.port) as c:  # still serving the last table meanwhile
                assert c.get(1, 1) == [("10.0.0.1", 80)]
            proxy.restore()
            wait_for(lambda: get_json(ready)[0] == 200, timeout=60, what="ready again")
            assert value(scrape(metrics.url), "lars_dns_database_up") == 1
        finally:
            svc.stop()
            metrics.stop()
    direct.dispose()
