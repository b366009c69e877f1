"""Self-registration across hosts (issue 20), guard defaults, [dns] lease 10 s.

Two route services and three app hosts; on each host four business processes listen on
TCP and register through the host's agent: 2 instances of each of 2 modules, 12 in all,
and nothing in RouteData. Then:
- killing one process removes its instance (the agent's tcp check) from both route
  services; restarting it brings it back;
- partitioning one host from everything expires its 4 instances after the lease (4 of 12
  is under max_drop_ratio: applied), and healing brings them back;
- partitioning two hosts (8 of 12) is a mass expiry: both route services HOLD it and keep
  serving all 12; healing ends the hold.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from lars.dbengine import init_schema, make_engine, scratch_database
from tests.integration.dns_wire import RouteConn
from tests.multihost.platform import AppHost, Platform, Proc, wait_for

pytestmark = pytest.mark.e2e

REG_MODULES = ((21, 1), (22, 1))
PORTS = (9101, 9102)  # two instances of each module per host
LEASE = 10.0
SERVICE = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
while True:
    c, _ = s.accept()
    c.close()
"""


@pytest.fixture(scope="module")
def routes_db(mysql_server_url: str) -> Iterator[str]:
    """The schema and nothing else: every host is a registered one."""
    with scratch_database(mysql_server_url, "lars_mhreg") as url:
        engine = make_engine(url)
        init_schema(engine)
        engine.dispose()
        yield url


class Fleet:
    def __init__(self, platform: Platform, dns: list[tuple[Proc, str]], apps: list[AppHost]):
        self.platform = platform
        self.dns = dns
        self.apps = apps
        self.services: dict[tuple[str, int, int], Proc] = {}  # (host, modid, port)

    def start_service(self, app: AppHost, modid: int, port: int) -> None:
        argv = app.host.python(["-c", SERVICE, app.ip, str(port + modid * 10)])
        proc = Proc(argv, self.platform.workdir / f"{app.host.name}-svc-{modid}-{port}.log",
                    self.platform.net.env())  # fmt: skip
        self.platform.procs.append(proc)
        self.services[(app.host.name, modid, port)] = proc

    def register(self, app: AppHost, modid: int, cmdid: int, port: int) -> None:
        argv = ["register", str(modid), str(cmdid), app.ip, str(port + modid * 10),
                "--agent-port", "8888", "--timeout", "5"]  # fmt: skip
        proc = self.platform.spawn(f"{app.host.name}-register", argv, host=app.host)
        assert proc.proc.wait(60) == 0, proc.text()[-2000:]

    def served(self) -> list[int]:
        """Registered hosts each route service serves (both modules together)."""
        counts = []
        for _proc, addr in self.dns:
            ip, port = addr.split(":")
            with RouteConn(int(port), host=ip) as conn:
                counts.append(sum(len(conn.get(m, c)) for m, c in REG_MODULES))
        return counts

    def wait_served(self, n: int, timeout: float, what: str) -> None:
        wait_for(what, lambda: self.served() == [n, n], timeout, every=0.2)

    def holding(self) -> list[bool]:
        return ["HOLDING route table" in proc.text() for proc, _ in self.dns]


@pytest.fixture(scope="module")
def fleet(platform: Platform) -> Iterator[Fleet]:
    conf = platform.workdir / "dns.conf"
    conf.write_text(f"[dns]\nlease = {LEASE}\nsnapshot = off\n", encoding="utf-8")
    dns = [platform.start_dns(name, "-c", str(conf)) for name in ("dns1", "dns2")]
    _, reporter = platform.start_reporter()
    apps = [platform.add_app(name) for name in ("r1", "r2", "r3")]
    fleet = Fleet(platform, dns, apps)
    for app in apps:
        app.start_agent([addr for _, addr in dns], reporter)
        for modid, cmdid in REG_MODULES:
            for port in PORTS:
                fleet.start_service(app, modid, port)
                fleet.register(app, modid, cmdid, port)
    fleet.wait_served(12, 60, "12 registered instances served by both route services")
    yield fleet


def test_a_killed_process_leaves_and_comes_back(fleet: Fleet) -> None:
    app = fleet.apps[0]
    proc = fleet.services[(app.host.name, 21, PORTS[0])]
    proc.stop(signal.SIGKILL)
    fleet.wait_served(11, 30, "the killed process's instance gone from both")
    fleet.start_service(app, 21, PORTS[0])
    fleet.wait_served(12, 30, "the restarted process back")


def test_one_partitioned_host_expires_after_the_lease(fleet: Fleet) -> None:
    app = fleet.apps[2]
    app.host.drop()
    started = time.monotonic()
    try:
        fleet.wait_served(8, LEASE + 30, "the partitioned host's 4 instances expired")
        assert time.monotonic() - started >= LEASE - 2  # not before its lease ran out
        assert fleet.holding() == [False, False]
    finally:
        app.host.heal()
    fleet.wait_served(12, 60, "the healed host's instances back")


def test_two_partitioned_hosts_are_a_mass_expiry_held(fleet: Fleet) -> None:
    cut = fleet.apps[1:]
    for app in cut:
        app.host.drop()
    try:
        wait_for("both route services holding", lambda: fleet.holding() == [True, True],
                 LEASE + 30, every=0.5)  # fmt: skip
        assert fleet.served() == [12, 12]  # held: nothing pushed, all still served
        time.sleep(3)
        assert fleet.served() == [12, 12]
    finally:
        for app in cut:
            app.host.heal()
    wait_for("the hold ended", lambda: all("hold ended" in p.text() for p, _ in fleet.dns),
             60, every=0.5)  # fmt: skip
    fleet.wait_served(12, 60, "all 12 served after healing")
