"""Self-registration end to end with real processes (issue 20): `lars dns`, two `lars
agent`s, a business process listening on TCP, and `lars register`/`deregister`, on SQLite
and on MariaDB.

The service registers through agent A; agent B (another host's agent, as far as the
route service knows: another id) must get it from the route service. Killing the
process makes A's tcp check fail and the host leaves B's answers; restarting it brings
it back; restarting the route service loses nothing; restarting agent A keeps the
registration; killing agent A for good expires it after the lease; `lars deregister`
removes it. Waits use generous deadlines: the delays
are benchmark figures (benchmarks/registration.py).
"""

from __future__ import annotations

import signal
import socket
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

MOD = (11, 1)
SERVICE = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    c.close()
"""


def lars(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lars", *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Service:
    """The business process: accepts TCP connections on its port until killed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVICE, str(self.port)])
        wait_until(self._listening, 30, "the service listening")

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, object]]:
    if request.param == "mysql":
        db = str(request.getfixturevalue("mysql_url"))
    else:
        db = f"sqlite:///{tmp_path / 'lars.db'}"
    engine = make_engine(db)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 1, "10.0.0.1", 9000)  # unrelated static routes
    RouteAdmin(engine).add_host(2, 2, "10.0.0.2", 9000)
    engine.dispose()
    conf = tmp_path / "dns.conf"
    conf.write_text("[dns]\nlease = 4\nsnapshot = off\n", encoding="utf-8")
    dns_port = free_port()
    dns = Proc(tmp_path / "dns.log", "dns", "-c", str(conf), "--db", db,
               "--ip", "127.0.0.1", "--port", str(dns_port))  # fmt: skip
    procs: list[Proc] = [dns]
    service = Service(free_port())
    try:
        yield {"tmp": tmp_path, "db": db, "dns": f"127.0.0.1:{dns_port}", "procs": procs,
               "service": service}  # fmt: skip
    finally:
        service.kill()
        for proc in reversed(procs):
            proc.stop()


def restart_dns(env: dict[str, object]) -> None:
    procs = env["procs"]
    assert isinstance(procs, list)
    old = procs[0]
    code, _log = old.stop()
    assert code == 0
    procs[0] = Proc(old.log.with_suffix(".2.log"), *old.proc.args[5:])


def agent(env: dict[str, object], name: str, base: int) -> Proc:
    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    proc = Proc(tmp / f"{name}.log", "agent", "--base-port", str(base), "--dns", str(env["dns"]),
                "--reporter", "127.0.0.1:1", "--metrics", "off",
                "--registrations", str(tmp / f"agent-{base}.registrations.json"))  # fmt: skip
    procs = env["procs"]
    assert isinstance(procs, list)
    procs.append(proc)
    return proc


def hosts(client: LarsClient) -> set[tuple[str, int]]:
    result = client.get_route(*MOD, timeout=0.5)
    return {(h.ip, h.port) for h in result.hosts}


def test_register_kill_restart_agent_restart_expire_deregister(env: dict[str, object]) -> None:
    service = env["service"]
    assert isinstance(service, Service)
    service.start()
    base_a, base_b = free_udp_base(), free_udp_base()
    agent_a = agent(env, "a", base_a)
    agent(env, "b", base_b)
    me = ("127.0.0.1", service.port)
    with LarsClient(base_port=base_b) as b:
        # register through agent A (retried until A is up and answers)
        wait_until(
            lambda: lars("register", *map(str, MOD), *map(str, me), "--agent-port", str(base_a))
            .returncode == 0, 60, "agent A to take the registration",
        )  # fmt: skip
        wait_until(lambda: hosts(b) == {me}, 60, "agent B to serve the registered host")
        # the process dies: A's tcp check fails, the host leaves B's answers
        service.kill()
        wait_until(lambda: hosts(b) == set(), 60, "the dead process gone from agent B")
        service.start()
        wait_until(lambda: hosts(b) == {me}, 60, "the restarted process back")
        # the route service restarts: nothing is lost (the rows are in the database and
        # the agents sync again on their new connections)
        restart_dns(env)
        wait_until(lambda: hosts(b) == {me}, 60, "the host served after the dns restart")
        # agent A restarts: its registration survives (kept on disk, synced again)
        code, _log = agent_a.stop()
        assert code == 0
        agent_a = agent(env, "a2", base_a)
        time.sleep(6)  # past the 4 s lease: only A's new sync can have kept it
        wait_until(lambda: hosts(b) == {me}, 60, "the registration kept across A's restart")
        # agent A dies for good: no renewal, the instance expires after the lease
        agent_a.stop(signal.SIGKILL)
        wait_until(lambda: hosts(b) == set(), 60, "the instance expired")
        agent_a = agent(env, "a3", base_a)  # back: the registration returns
        wait_until(lambda: hosts(b) == {me}, 60, "the registration back with agent A")
        r = lars("deregister", *map(str, MOD), *map(str, me), "--agent-port", str(base_a))
        assert r.returncode == 0, r.stderr
        wait_until(lambda: hosts(b) == set(), 60, "the deregistered host gone")
    r = lars("route", "history", str(MOD[0]), str(MOD[1]), "--db", str(env["db"]), "--json")
    assert r.returncode == 0, r.stderr
    actions = [line for line in r.stdout.splitlines() if line.strip()]
    text = "\n".join(actions)
    assert '"register"' in text and '"deregister"' in text and '"expire"' in text
