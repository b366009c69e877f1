"""Registered -> served by the agent's get_host -> killed: gone -> deregistered: gone, with
real processes (issue 20): `lars dns` on SQLite and on MariaDB, `lars agent --mode
processes` (each shard process owns its shard's registrations) and business processes that
register themselves with `LarsClient.registered()`. Generous deadlines: the delays are
benchmark figures.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lars.client import LarsClient
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.e2e.test_agent_process import Proc, free_udp_base

pytestmark = pytest.mark.e2e

# A business process: listens, registers itself through its host's agent, serves until
# killed; SIGTERM ends the `with` block, which deregisters.
SERVICE = """
import signal, socket, sys, time
from lars.client import LarsClient
from lars.errors import NotAnswering
base, modid, cmdid = map(int, sys.argv[1:4])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
port = s.getsockname()[1]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with LarsClient(base_port=base) as client:
    deadline = time.monotonic() + 60
    while True:  # the agent may still be starting
        try:
            registration = client.register(modid, cmdid, "127.0.0.1", port)
            break
        except NotAnswering:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with registration:
        print(port, flush=True)
        while True:
            conn, _ = s.accept()
            conn.close()
"""


def wait_until(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Business:
    def __init__(self, base: int, modid: int, cmdid: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE, str(base), str(modid), str(cmdid)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once registered
        assert line.strip().isdigit(), f"the business process did not register: {line!r}"
        self.port = int(line)

    def stop(self, sig: int) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture(params=["sqlite", "mariadb"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lars.db'}"
    url: str = request.getfixturevalue("mysql_url")  # a fresh database, dropped after
    return url


@pytest.fixture
def platform(tmp_path: Path, db: str) -> Iterator[int]:
    """`lars dns` + `lars agent --mode processes`; yields the agent's base port."""
    engine = make_engine(db)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 1, "10.0.0.1", 9000)  # a static module beside
    engine.dispose()
    conf = tmp_path / "dns.conf"
    conf.write_text("[dns]\nlease = 4\nsnapshot = off\n", encoding="utf-8")
    dns_port, base = free_port(), free_udp_base()
    dns = Proc(tmp_path / "dns.log", "dns", "-c", str(conf), "--db", db,
               "--ip", "127.0.0.1", "--port", str(dns_port), "--metrics", "off")  # fmt: skip
    agent = Proc(tmp_path / "agent.log", "agent", "--mode", "processes",
                 "--base-port", str(base), "--dns", f"127.0.0.1:{dns_port}",
                 "--reporter", "127.0.0.1:1", "--metrics", "off",
                 "--registrations", str(tmp_path / "agent.registrations.json"))  # fmt: skip
    try:
        yield base
    finally:
        agent.stop()
        dns.stop()
    files = sorted(p.name for p in tmp_path.glob("agent.registrations.json*"))
    assert files and all(name[-2:] in (".0", ".1", ".2") for name in files), files


def served(client: LarsClient, modid: int, cmdid: int) -> set[int]:
    route = client.get_route(modid, cmdid, timeout=0.5)
    return {h.port for h in route.hosts if h.ip == "127.0.0.1"}


def test_registered_served_killed_gone_deregistered_gone(platform: int, tmp_path: Path) -> None:
    base = platform
    a = Business(base, 11, 1)  # shard 0
    b = Business(base, 11, 2)  # shard 1: another shard process owns it
    with LarsClient(base_port=base) as client:
        try:
            wait_until(lambda: served(client, 11, 1) == {a.port}, 60, "a served")
            wait_until(lambda: served(client, 11, 2) == {b.port}, 60, "b served")
            host = client.get_host(11, 1, timeout=0.5)
            assert (host.ip, host.port) == ("127.0.0.1", a.port)
            # killed: the tcp check fails, the route service drops it, the agent follows
            assert a.stop(signal.SIGKILL) != 0
            wait_until(lambda: served(client, 11, 1) == set(), 60, "the killed process gone")
            assert served(client, 11, 2) == {b.port}
            # a graceful stop deregisters (the `with client.registered(...)` block ends)
            assert b.stop(signal.SIGTERM) == 0
            wait_until(lambda: served(client, 11, 2) == set(), 60, "the deregistered one gone")
            # the killed one is still registered (failing) until someone deregisters it
            out = subprocess.run(
                [sys.executable, "-m", "lars", "deregister", "11", "1", "127.0.0.1",
                 str(a.port), "--agent-port", str(base), "--timeout", "10", "--json"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["status"] == "OK"
        finally:
            a.stop(signal.SIGKILL)
            b.stop(signal.SIGKILL)
