"""The guard, change detection and outage detection of the route service on MariaDB,
with faults injected through a TCP proxy in front of the database."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest
from sqlalchemy.engine import make_url

from lars.dbengine import init_schema, make_engine
from lars.dns.service import DnsService
from lars.routes.admin import RouteAdmin
from tests.integration.dns_wire import RouteConn, hosts_of, wait_for
from tests.integration.test_dns_guard_service import (
    check_original_database_without_route_audit,
    check_push_empty_is_held_then_released,
    check_restart_during_a_hold_does_not_serve_the_held_table,
    check_same_second_double_edit_arrives_fast,
)
from tests.integration.test_dns_service import config
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.mysql

FREEZE_SECONDS = 8.0  # longer than every timeout of a poll; 30 s in benchmarks/RESULTS.md


def test_push_empty_is_held_then_released_by_lars_route_release_mysql(
    no_leaks: None, mysql_url: str
) -> None:
    check_push_empty_is_held_then_released(mysql_url, cli=True)


def test_restart_during_a_hold_mysql(no_leaks: None, mysql_url: str) -> None:
    check_restart_during_a_hold_does_not_serve_the_held_table(mysql_url)


def test_same_second_double_edit_arrives_fast_mysql(no_leaks: None, mysql_url: str) -> None:
    check_same_second_double_edit_arrives_fast(mysql_url)


def test_original_database_without_route_audit_mysql(no_leaks: None, mysql_url: str) -> None:
    check_original_database_without_route_audit(mysql_url)


def test_frozen_database_is_logged_within_seconds_and_an_edit_after_thaw_is_fast(
    no_leaks: None, mysql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Measured defect: a frozen database (packets stop, nothing closes) gave no log line
    for 30-90 s, and edits made meanwhile waited until the freeze ended."""
    direct = make_engine(mysql_url)
    init_schema(direct)
    admin = RouteAdmin(direct)
    admin.add_host(1, 1, "10.0.0.1", 80)
    target = make_url(mysql_url)
    with CuttableProxy((target.host or "127.0.0.1", target.port or 3306)) as proxy:
        via = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        # the defaults of a real deployment: poll 0.1 s, 1 s poll timeouts
        svc = DnsService(dataclasses.replace(config(via), poll_interval=0.1, retry_max=0.5))
        svc.start()
        try:
            with RouteConn(svc.port) as sub, caplog.at_level(logging.WARNING, "lars.dns"):
                assert sub.get(1, 1) == [("10.0.0.1", 80)]
                proxy.freeze()
                frozen_at = time.monotonic()
                wait_for(lambda: svc.stats().poller.in_outage, timeout=5.0, what="outage logged")
                noticed = time.monotonic() - frozen_at
                outage_lines = [r for r in caplog.records if "unavailable" in r.getMessage()]
                assert len(outage_lines) == 1, noticed
                admin.add_host(1, 1, "10.0.0.2", 81)  # committed during the freeze
                remaining = FREEZE_SECONDS - (time.monotonic() - frozen_at)
                time.sleep(max(0.0, remaining))
                assert sub.get(1, 1) == [("10.0.0.1", 80)]  # the last table, served
                proxy.thaw()
                _msgid, msg = sub.read(timeout=5.0)
                assert hosts_of(msg) == [("10.0.0.1", 80), ("10.0.0.2", 81)]
                admin.add_host(1, 1, "10.0.0.3", 82)  # right after the thaw
                _msgid, msg = sub.read(timeout=1.0)
                assert ("10.0.0.3", 82) in hosts_of(msg)
                wait_for(lambda: not svc.stats().poller.in_outage, what="the recovery")
                msgs = [r.getMessage() for r in caplog.records]
                assert sum("unavailable" in m for m in msgs) == 1
                assert sum("reachable again" in m for m in msgs) == 1
        finally:
            svc.stop()
    direct.dispose()
