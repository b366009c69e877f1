"""Each daemon's collector registers on its own registry with bounded label sets; the
JSON log formatter writes one object per line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Metric

from lars.console.counters import ConsoleCounters
from lars.console.metrics import ConsoleCollector
from lars.dns.metrics import DnsCollector
from lars.dns.service import DnsConfig, DnsService
from lars.obs.logs import JsonFormatter
from lars.reporter.metrics import ReporterCollector
from lars.reporter.service import ReporterConfig, ReporterService


def label_sets(registry: CollectorRegistry) -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set[tuple[str, ...]]] = {}
    metric: Metric
    for metric in registry.collect():
        out[metric.name] = {tuple(sorted(s.labels)) for s in metric.samples}
    return out


def test_dns_families(tmp_path: Path) -> None:
    dns = DnsService(DnsConfig(db_url=f"sqlite:///{tmp_path / 'x.db'}"))  # not started
    try:
        registry = CollectorRegistry()
        registry.register(DnsCollector(dns))
        labels = label_sets(registry)
        assert labels["lars_dns_route_version"] == {()}
        assert labels["lars_dns_table_loaded"] == {()}
        assert labels["lars_dns_frames_dropped"] == {("reason",)}
        assert labels["lars_dns_push_duration_seconds"] == {(), ("le",)}
        assert "lars_dns_last_poll_age_seconds" not in labels  # no poll yet: no made-up age
        assert all(name.startswith("lars_dns_") for name in labels)
    finally:
        dns.stop()


def test_reporter_families(tmp_path: Path) -> None:
    reporter = ReporterService(ReporterConfig(db_url=f"sqlite:///{tmp_path / 'x.db'}"))
    registry = CollectorRegistry()
    registry.register(ReporterCollector(reporter))
    labels = label_sets(registry)
    assert labels["lars_reporter_rows_dropped"] == {("reason",)}
    assert labels["lars_reporter_database_up"] == {()}
    assert "lars_reporter_last_commit_age_seconds" not in labels
    assert all(name.startswith("lars_reporter_") for name in labels)


def test_console_families() -> None:
    counters = ConsoleCounters()
    counters.request("GET", "/api/modules", 200)
    counters.request("GET", "/api/modules", 200)
    counters.login_failures += 1
    registry = CollectorRegistry()
    registry.register(ConsoleCollector(counters))
    assert registry.get_sample_value(
        "lars_console_http_requests_total",
        {"method": "GET", "route": "/api/modules", "status": "200"},
    ) == 2
    assert registry.get_sample_value("lars_console_login_failures_total") == 1
    assert registry.get_sample_value("lars_console_logins_throttled_total") == 0


def test_json_formatter_one_object_per_line() -> None:
    fmt = JsonFormatter("dns")
    record = logging.LogRecord("lars.dns.x", logging.WARNING, __file__, 1, "a %s\nb", ("x",), None)
    doc = json.loads(fmt.format(record))
    assert doc["level"] == "WARNING" and doc["logger"] == "lars.dns.x"
    assert doc["message"] == "a x\nb" and doc["daemon"] == "dns"
    assert doc["time"].endswith("Z") and "T" in doc["time"]
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("l", logging.ERROR, __file__, 1, "m", (), sys.exc_info())
    line = fmt.format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]
