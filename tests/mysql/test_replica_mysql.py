"""Route services on a MariaDB replica (issue 22), end to end on a private primary + GTID
replica pair (tests/mysql/replica.py, never the machine's own server) with real
`python -m lars dns` processes:

- reading the replica as the SELECT-only `reader` (no --write-db), a route service serves
  and pushes every edit made on the primary through `lars route` and RouteAdmin, stays
  ready, logs no failed write (no 1142, no 1290), says once that it cannot write, and
  holds a push-empty alone with its snapshot file (logged, nothing written), which
  `lars route release --force` on the primary ends;
- with --write-db set to the primary, its holds are shared (hold row, guard state on the
  primary) and `lars route restore` on the primary brings the served table back;
- RouteAdmin's retention trimming and `lars route gc` run on MariaDB (serial order).

Starting the pair takes about 15 s: one pair per module. Where mariadbd or
mariadb-install-db is missing the tests skip with the reason (in CI, CI=true or
LARS_REQUIRE_MARIADB=1 as .ci/run sets, they fail).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import func, select, text

from lars.db import route_audit, route_change, route_guard_state
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from lars.routes.changegc import trim_changes
from lars.routes.guardstate import decode
from tests.conftest import free_port
from tests.e2e.test_dns_cli import DnsProcess, lars
from tests.integration.dns_wire import RouteConn, hosts_of, wait_for
from tests.mysql.replica import MariaPair, mariadb_available

pytestmark = [pytest.mark.mysql, pytest.mark.e2e]

DB = "lars_replica"
MODULES = [(m, 1) for m in range(1, 6)]  # 5 modules of 2 hosts


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaPair]:
    problem = mariadb_available()
    if problem is not None:
        if os.environ.get("LARS_REQUIRE_MARIADB") == "1" or os.environ.get("CI"):
            pytest.fail(f"private MariaDB replica pair unavailable in CI: {problem}")
        pytest.skip(f"private MariaDB replica pair unavailable: {problem}")
    with MariaPair.start(tmp_path_factory.mktemp("maria")) as started:
        yield started


@pytest.fixture
def primary(pair: MariaPair) -> Iterator[sqlalchemy.Engine]:
    """A fresh database on the primary with the table of MODULES, on the replica too."""
    pair.primary.execute(f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}")
    engine = make_engine(pair.primary_url(DB))
    init_schema(engine)
    admin = RouteAdmin(engine, actor="cli:setup")
    for m, c in MODULES:
        for h in (1, 2):
            admin.add_host(m, c, f"10.0.{m}.{h}", 9000 + h)
    pair.sync()
    yield engine
    engine.dispose()


def start_dns(pair: MariaPair, tmp_path: Path, *extra: str) -> tuple[DnsProcess, int]:
    metrics = free_port()
    dns = DnsProcess(
        [
            "--db",
            pair.replica_url(DB),
            "--ip",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--metrics",
            f"127.0.0.1:{metrics}",
            "--snapshot",
            str(tmp_path / "lars_dns.guard"),
            *extra,
        ],
        tmp_path,
    )
    return dns, metrics


def http(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def status(port: int) -> dict[str, object]:
    code, body = http(port, "/status")
    assert code == 200, body
    doc: dict[str, object] = json.loads(body)
    return doc


def all_served(port: int) -> bool:
    """Every module has its 2 hosts (a fresh connection: no pushes in between)."""
    with RouteConn(port) as conn:
        return all(len(conn.get(m, c)) == 2 for m, c in MODULES)


def no_failed_write(log: str) -> None:
    assert not re.search(r"\b(1142|1290|1227)\b", log), log
    assert "command denied" not in log and "read-only option" not in log, log


def count(engine: sqlalchemy.Engine, query: sqlalchemy.Select[Any]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def test_a_route_service_on_the_replica_serves_and_pushes_every_edit_and_writes_nothing(
    pair: MariaPair, primary: sqlalchemy.Engine, tmp_path: Path
) -> None:
    audit_rows = count(primary, select(func.count()).select_from(route_audit))
    dns, metrics = start_dns(pair, tmp_path)
    try:
        with RouteConn(dns.port) as sub:
            assert sub.get(1, 1) == [("10.0.1.1", 9001), ("10.0.1.2", 9002)]
            admin = RouteAdmin(primary, actor="cli:e2e")
            expected = [("10.0.1.1", 9001), ("10.0.1.2", 9002)]
            for i in range(8):  # every edit, through RouteAdmin and the CLI, is pushed
                host = (f"10.9.0.{i + 1}", 7000 + i)
                if i % 2:
                    admin.add_host(1, 1, *host)
                else:
                    r = lars("route", "add", "1", "1", host[0], str(host[1]),
                             "--db", pair.primary_url(DB), cwd=tmp_path)  # fmt: skip
                    assert r.returncode == 0, r.stderr
                expected = sorted([*expected, host])
                msgid, msg = sub.read(timeout=30)
                assert msgid == 2 and (msg.modid, msg.cmdid) == (1, 1)
                assert sorted(hosts_of(msg)) == expected
                assert msg.version == admin.current_version()  # never-backwards field
            assert http(metrics, "/readyz")[0] == 200
            doc = status(metrics)
            writes = doc["writes"]
            assert isinstance(writes, dict)
            assert writes["state"] == "read-only" and writes["write_db"] is False
            assert writes["cleans_changes"] is False
            code, text_metrics = http(metrics, "/metrics")
            assert code == 200 and "lars_dns_database_writable 0.0" in text_metrics
            registrations = doc["registrations"]
            assert isinstance(registrations, dict) and registrations["accepted"] is False
        # nothing written by the route service: RouteChange kept (trimmed by RouteAdmin
        # after the retention), no audit rows of its own
        assert count(primary, select(func.count()).select_from(route_change)) >= 8
        rows = count(primary, select(func.count()).select_from(route_audit))
        assert rows == audit_rows + 8  # the 8 edits' rows, no 'dns' or 'sql' row
    finally:
        assert dns.stop() == 0
    log = "".join(dns.log)
    no_failed_write(log)
    assert log.count("cannot be written by this route service") == 1, log


def test_without_write_db_a_hold_is_kept_locally_and_logged(
    pair: MariaPair, primary: sqlalchemy.Engine, tmp_path: Path
) -> None:
    dns, metrics = start_dns(pair, tmp_path)
    try:
        with RouteConn(dns.port) as sub:
            assert len(sub.get(2, 1)) == 2
            with primary.begin() as conn:  # a DBA empties the table
                conn.execute(text("DELETE FROM RouteData"))
                conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
            wait_for(lambda: status(metrics)["held"] is not None, 30, "held")
            for m, c in MODULES:
                assert len(sub.get(m, c)) == 2  # the last good table, still served
            assert http(metrics, "/readyz")[0] == 200
            snapshot = decode((tmp_path / "lars_dns.guard").read_bytes())
            assert snapshot.held is not None and snapshot.hosts == 10
            # the hold was written nowhere in the database
            assert count(primary, select(func.count()).select_from(route_guard_state)) == 0
            holds = (
                select(func.count()).select_from(route_audit).where(route_audit.c.action == "hold")
            )
            assert count(primary, holds) == 0
            # no hold row: a plain release finds nothing held; a forced one, written after
            # the hold began, ends it (the empty table is applied)
            url = pair.primary_url(DB)
            r = lars("route", "release", "--db", url, cwd=tmp_path)
            assert r.returncode == 2, r.stdout + r.stderr
            r = lars("route", "release", "--force", "--db", url, cwd=tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
            wait_for(lambda: status(metrics)["held"] is None, 30, "released")
            with RouteConn(dns.port) as fresh:
                assert fresh.get(1, 1) == []
            # the hosts come back (additions are never held)
            admin = RouteAdmin(primary, actor="cli:e2e")
            for m, c in MODULES:
                admin.add_host(m, c, f"10.0.{m}.1", 9001)
                admin.add_host(m, c, f"10.0.{m}.2", 9002)
        wait_for(lambda: all_served(dns.port), 30, "every module back")
    finally:
        assert dns.stop() == 0
    log = "".join(dns.log)
    no_failed_write(log)
    assert "HOLDING route table" in log


def test_with_write_db_holds_are_shared_and_restore_works(
    pair: MariaPair, primary: sqlalchemy.Engine, tmp_path: Path
) -> None:
    dns, metrics = start_dns(pair, tmp_path, "--write-db", pair.primary_url(DB))
    try:
        with RouteConn(dns.port) as sub:
            assert len(sub.get(3, 1)) == 2
            writes = status(metrics)["writes"]
            assert isinstance(writes, dict)
            assert (writes["state"], writes["write_db"]) == ("writable", True)
            with primary.begin() as conn:
                conn.execute(text("DELETE FROM RouteData"))
                conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
            wait_for(lambda: status(metrics)["held"] is not None, 30, "held")
            holds = (
                select(func.count()).select_from(route_audit).where(route_audit.c.action == "hold")
            )
            wait_for(lambda: count(primary, holds) == 1, 30, "hold row on the primary")
            wait_for(
                lambda: count(primary, select(func.count()).select_from(route_guard_state)) == 1,
                30,
                "guard state on the primary",
            )
            r = lars("route", "status", "--db", pair.primary_url(DB), cwd=tmp_path)
            assert "held" in r.stdout.lower(), r.stdout + r.stderr
            r = lars("route", "restore", "--db", pair.primary_url(DB), cwd=tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
            wait_for(lambda: status(metrics)["held"] is None, 30, "restored")
        with RouteConn(dns.port) as fresh:
            assert all(len(fresh.get(m, c)) == 2 for m, c in MODULES)
            with primary.connect() as conn:
                assert conn.execute(text("SELECT COUNT(*) FROM RouteData")).scalar() == 10
        # its RouteChange rows are cleaned through the primary, as the original does
        wait_for(
            lambda: count(primary, select(func.count()).select_from(route_change)) == 0,
            30,
            "RouteChange cleaned",
        )
    finally:
        assert dns.stop() == 0
    no_failed_write("".join(dns.log))


def test_retention_trimming_and_gc_on_mariadb(
    pair: MariaPair, primary: sqlalchemy.Engine, tmp_path: Path
) -> None:
    top = 2**32 - 1
    with primary.begin() as conn:
        conn.execute(text("DELETE FROM RouteChange"))
        conn.execute(
            text(
                "INSERT INTO RouteChange (modid, cmdid, version) VALUES (1,1,:a),(2,2,:b),(3,3,:c)"
            ),
            {"a": top - 5, "b": 4000, "c": 1000},
        )
        # version 5000 after a wrap: top - 5 and 1000 are older than 5000 - 3600
        assert trim_changes(conn, 5000, 3600) == 2
        left = [tuple(r) for r in conn.execute(text("SELECT modid, version FROM RouteChange"))]
        assert left == [(2, 4000)]
    pair.sync()
    r = lars("route", "gc", "--retention", "0", "--db", pair.primary_url(DB), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"\b1 RouteChange row\(s\) deleted", r.stdout), r.stdout
    r = lars("route", "gc", "--retention", "-1", "--db", pair.primary_url(DB), cwd=tmp_path)
    assert r.returncode != 0


def test_an_agent_failing_over_to_a_lagging_replica_keeps_the_newer_table(
    pair: MariaPair, primary: sqlalchemy.Engine, no_leaks: None
) -> None:
    """Never backwards with real route services: A reads the primary, B a replica whose
    replication is paused. An edit reaches the agent through A; A dies; B still serves the
    older table: the agent keeps the newer one; replication resumes and B catches up."""
    from dataclasses import replace

    from lars.agent.config import AgentConfig
    from lars.agent.service import AgentService
    from lars.dns.service import DnsService
    from lars.protocol import dotted_to_wire
    from lars.reactor import backoff
    from tests.integration.agent_fakes import UdpPeer, wait_until
    from tests.integration.test_dns_service import config

    h1, h2 = (dotted_to_wire("10.0.1.1"), 9001), (dotted_to_wire("10.0.1.2"), 9002)
    new = (dotted_to_wire("10.7.7.7"), 7777)
    a = DnsService(config(pair.primary_url(DB)))
    b_cfg = config(pair.replica_url(DB))
    b = DnsService(replace(b_cfg, reactor=replace(b_cfg.reactor, port=free_port())))
    a.start()
    agent = AgentService(
        AgentConfig(
            base_port=0,
            dns_addresses=(("127.0.0.1", a.port), ("127.0.0.1", b.config.reactor.port)),
            reporter_addresses=(("127.0.0.1", free_port()),),
            caller="10.1.2.3",
        ),
        backoff_factory=lambda: backoff(0.01, 0.1),
    )
    agent.start()
    peer = UdpPeer(agent.ports)
    b_started = False
    try:
        wait_until(lambda: sorted(peer.get_route(1, 1)) == sorted([h1, h2]), 30)
        pair.pause_replication()
        RouteAdmin(primary, actor="cli:e2e").add_host(1, 1, "10.7.7.7", 7777)
        wait_until(lambda: sorted(peer.get_route(1, 1)) == sorted([h1, h2, new]), 30)
        b.start()
        b_started = True
        assert len(b.table.hosts((1, 1))) == 2  # the lagging replica's older table
        a.stop()
        gate = agent.route_client.freshness
        wait_until(lambda: gate.refused >= 1, 30)  # B answered the older table
        for _ in range(25):
            assert sorted(peer.get_route(1, 1)) == sorted([h1, h2, new])
        pair.resume_replication()
        pair.sync()
        wait_until(lambda: len(b.table.hosts((1, 1))) == 3, 30)
        wait_until(lambda: gate.waiting == 0, 30)  # B pushed the newer table
        assert sorted(peer.get_route(1, 1)) == sorted([h1, h2, new])
        assert gate.rollbacks == 0
    finally:
        pair.resume_replication()
        peer.close()
        agent.stop()
        a.stop()
        if b_started:
            b.stop()
