"""While a table is held, /status, the metrics and `lars route status` tell what is served,
what is held and since when (issue 18), on SQLite with a real route service."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from lars.dbengine import init_schema, make_engine
from lars.dns.metrics import dns_metrics_server
from lars.dns.service import DnsService
from lars.obs.listen import MetricsConfig
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import wait_for
from tests.integration.test_obs_dns import config
from tests.obs_util import get_json, scrape, value


def test_status_metrics_and_cli_tell_served_and_held(no_leaks: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = make_engine(url)
    init_schema(engine)
    admin = RouteAdmin(engine, actor="cli:setup")
    for m in range(1, 5):
        for h in (1, 2):
            admin.add_host(m, 1, f"10.0.{m}.{h}", 80)
    svc = DnsService(config(url))
    metrics = dns_metrics_server(svc, MetricsConfig(listen=("127.0.0.1", 0)))
    assert metrics is not None
    metrics.start()
    try:
        svc.start()
        started = time.time()
        _code, status = get_json(metrics.url + "/status")
        assert status["held"] is None and status["hosts"] == 8
        assert abs(status["served_since"] - started) < 60 and status["guard_baseline_hosts"] == 8
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM RouteData WHERE modid > 1"))
            conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
        wait_for(lambda: svc.stats().held is not None, what="the hold")
        _code, status = get_json(metrics.url + "/status")
        held = status["held"]
        assert status["hosts"] == 8 and held["hosts"] == 2 and held["modules"] == 1
        assert held["reason"] == "drop" and "hosts 8->2" in held["detail"]
        assert abs(held["since"] - time.time()) < 60
        samples = scrape(metrics.url)
        assert value(samples, "lars_dns_table_held") == 1
        assert value(samples, "lars_dns_held_hosts") == 2
        assert abs(value(samples, "lars_dns_held_since_seconds") - held["since"]) < 0.01
        assert value(samples, "lars_dns_hosts") == 8
        assert value(samples, "lars_dns_guard_baseline_hosts") == 8
        assert value(samples, "lars_dns_guard_state_saves_total") >= 2
        assert value(samples, "lars_dns_guard_state_write_failures_total", target="database") == 0
        done = subprocess.run(
            [sys.executable, "-m", "lars", "route", "status", "--db", url],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "served: version" in done.stdout and "4 modules, 8 hosts" in done.stdout
        assert "held: version" in done.stdout and "1 modules, 2 hosts" in done.stdout
    finally:
        svc.stop()
        metrics.stop()
        engine.dispose()
