"""The route guard across time and restarts, end to end on MariaDB (issue 18): real
`lars dns` and `lars agent` processes, a DBA's plain SQL, 10 modules of 3 hosts.

- A hold, one more version-only bump, a route-service restart: every module still served.
- A hold, a restart, one `lars route add`: every module still served.
- Module-by-module, batched (40 % of what is left) and host-by-host purges with 0.15 s
  and 0.3 s between the statements: the agent ends serving at least 15 of the 30 hosts.
- `lars route restore` then brings every module back to the agent.
Each also asks the route service directly, so an agent-side guard cannot hide a miss.
Deadlines are generous; how fast it happens is a benchmark figure."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text

from lars.dbengine import init_schema, make_engine
from lars.protocol import RetCode
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditLog
from tests.conftest import free_port
from tests.e2e.test_agent_process import Proc, free_udp_base, get_host
from tests.integration.agent_fakes import UdpPeer, wait_until
from tests.integration.dns_wire import RouteConn

pytestmark = [pytest.mark.e2e, pytest.mark.mysql]

MODULES = [(m, 1) for m in range(1, 11)]
DEADLINE = 60.0


@dataclass
class Fleet:
    url: str
    engine: sqlalchemy.Engine
    tmp: Path
    dns_port: int
    base: int
    dns: Proc
    agent: Proc
    restarts: int = 0

    def start_dns(self) -> Proc:
        self.restarts += 1
        return Proc(
            self.tmp / f"dns{self.restarts}.log", "dns", "--db", self.url, "--ip", "127.0.0.1",
            "--port", str(self.dns_port), "--poll-interval", "0.1",
            "--snapshot", str(self.tmp / "dns.guard"), "--metrics", "off",
        )  # fmt: skip

    def restart_dns(self) -> None:
        code, log = self.dns.stop()
        assert code == 0, log
        self.dns = self.start_dns()
        wait_until(lambda: "listening on port" in self.dns.log.read_text(), DEADLINE)

    def sql(self, *statements: str) -> None:
        with self.engine.begin() as conn:
            for s in statements:
                conn.execute(text(s))

    def held(self) -> bool:
        state = AuditLog(self.engine).hold_state()
        return state is not None


def dns_hosts(port: int) -> list[int]:
    """Hosts per module as the route service answers them."""
    try:
        with RouteConn(port) as c:
            return [len(c.get(m, cm)) for m, cm in MODULES]
    except OSError:
        return []


def agent_hosts(peer: UdpPeer) -> list[int]:
    try:
        return [len(peer.get_route(m, c)) for m, c in MODULES]
    except (TimeoutError, OSError):
        return []


@pytest.fixture
def fleet(mysql_url: str, tmp_path: Path) -> Iterator[Fleet]:
    engine = make_engine(mysql_url)
    init_schema(engine)
    admin = RouteAdmin(engine, actor="cli:setup")
    for m, c in MODULES:
        for h in range(3):
            admin.add_host(m, c, f"10.0.{m}.{h + 1}", 9000 + h)
    dns_port, base = free_port(), free_udp_base()
    f = Fleet(mysql_url, engine, tmp_path, dns_port, base, None, None)  # type: ignore[arg-type]
    f.dns = f.start_dns()
    f.agent = Proc(
        tmp_path / "agent.log", "agent", "--base-port", str(base),
        "--dns", f"127.0.0.1:{dns_port}", "--reporter", f"127.0.0.1:{free_port()}",
        "--caller", "10.9.8.7",
    )  # fmt: skip
    try:
        with UdpPeer((base, base + 1, base + 2)) as peer:
            peer.sock.settimeout(0.5)
            succ = int(RetCode.SUCC)
            wait_until(
                lambda: all(
                    (r := get_host(peer, m, c)) is not None and r.retcode == succ
                    for m, c in MODULES
                ),
                DEADLINE,
            )
            wait_until(lambda: agent_hosts(peer) == [3] * 10, DEADLINE)
        yield f
    finally:
        f.agent.stop()
        f.dns.stop()
        engine.dispose()


def settle(f: Fleet, peer: UdpPeer) -> list[int]:
    """Wait until the agent serves what the route service serves; return it."""
    seen: list[list[int]] = []

    def same() -> bool:
        a, d = agent_hosts(peer), dns_hosts(f.dns_port)
        seen[:] = [a]
        return bool(a) and a == d

    wait_until(same, DEADLINE, interval=0.2)
    return seen[0]


def restore_and_check(f: Fleet, peer: UdpPeer, served: list[int]) -> None:
    """`lars route restore`: the served table back in the database, the hold ended, and
    the agent serves exactly it (every module, when all were served)."""
    done = subprocess.run(
        [sys.executable, "-m", "lars", "route", "restore", "--db", f.url],
        capture_output=True, text=True, timeout=120, cwd=f.tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    modules = sum(1 for n in served if n)
    assert f"{modules} modules, {sum(served)} hosts" in done.stdout
    wait_until(lambda: not f.held(), DEADLINE, interval=0.2)
    with f.engine.connect() as conn:
        rows = int(conn.execute(text("SELECT COUNT(*) FROM RouteData")).scalar() or 0)
    assert rows == sum(served)
    assert settle(f, peer) == served


def test_version_only_bump_then_restart_serves_every_module(fleet: Fleet) -> None:
    f = fleet
    f.sql("DELETE FROM RouteData", "UPDATE RouteVersion SET version = version + 1")
    wait_until(f.held, DEADLINE, interval=0.1)
    f.sql("UPDATE RouteVersion SET version = version + 1")
    time.sleep(0.5)  # the bump is polled
    f.restart_dns()
    with UdpPeer((f.base, f.base + 1, f.base + 2)) as peer:
        peer.sock.settimeout(0.5)
        time.sleep(2.0)  # the agent reconnects and is answered by the restarted service
        assert dns_hosts(f.dns_port) == [3] * 10
        assert settle(f, peer) == [3] * 10  # 10 of 10 modules (the defect: 0 of 10)
        restore_and_check(f, peer, [3] * 10)


def test_restart_then_one_add_serves_every_module(fleet: Fleet) -> None:
    f = fleet
    f.sql("DELETE FROM RouteData", "UPDATE RouteVersion SET version = version + 1")
    wait_until(f.held, DEADLINE, interval=0.1)
    f.restart_dns()
    added = subprocess.run(
        [sys.executable, "-m", "lars", "route", "add", "--db", f.url, "1", "1", "127.0.1.1",
         "9001"],
        capture_output=True, text=True, timeout=120, cwd=f.tmp,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with UdpPeer((f.base, f.base + 1, f.base + 2)) as peer:
        peer.sock.settimeout(0.5)
        time.sleep(2.0)  # the add is polled (held) and the agent is answered
        assert dns_hosts(f.dns_port) == [3] * 10  # the defect: 9 of 10 modules NOEXIST
        assert settle(f, peer) == [3] * 10
        restore_and_check(f, peer, [3] * 10)


def purge_modules(f: Fleet, gap: float) -> None:
    for m, _c in MODULES:
        f.sql(
            f"DELETE FROM RouteData WHERE modid = {m}",
            "UPDATE RouteVersion SET version = version + 1",
        )
        time.sleep(gap)


def purge_batches(f: Fleet, gap: float) -> None:
    for _ in range(40):
        with f.engine.begin() as conn:
            left = int(conn.execute(text("SELECT COUNT(*) FROM RouteData")).scalar() or 0)
            if not left:
                return
            cut = max(1, left * 4 // 10)
            conn.execute(text(f"DELETE FROM RouteData ORDER BY id LIMIT {cut}"))
            conn.execute(text("UPDATE RouteVersion SET version = version + 1"))
        time.sleep(gap)


def purge_hosts(f: Fleet, gap: float) -> None:
    for _ in range(30):
        f.sql(
            "DELETE FROM RouteData ORDER BY id LIMIT 1",
            "UPDATE RouteVersion SET version = version + 1",
        )
        time.sleep(gap)


PURGES: dict[str, Callable[[Fleet, float], None]] = {
    "module-by-module": purge_modules,
    "batched": purge_batches,
    "host-by-host": purge_hosts,
}


@pytest.mark.parametrize("gap", [0.15, 0.3])
@pytest.mark.parametrize("kind", list(PURGES))
def test_a_purge_spread_over_polls_stops_at_half(fleet: Fleet, kind: str, gap: float) -> None:
    f = fleet
    PURGES[kind](f, gap)
    wait_until(f.held, DEADLINE, interval=0.1)  # the defect: no hold, no log line
    with UdpPeer((f.base, f.base + 1, f.base + 2)) as peer:
        peer.sock.settimeout(0.5)
        served = settle(f, peer)
        assert sum(served) >= 15, served
        restore_and_check(f, peer, served)
