"""`lars agent -c lars_lb_agent.conf` as a real process with the real route service and
reporter processes on SQLite: answers, pushes, stored reports, cache restart, SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lars.db import server_call_status
from lars.dbengine import init_schema, make_engine
from lars.protocol import RetCode, dotted_to_uint, dotted_to_wire, lars_pb2
from lars.routes.admin import RouteAdmin
from tests.conftest import free_port
from tests.integration.agent_fakes import FakeReporter, FakeRouteService, UdpPeer, wait_until

pytestmark = pytest.mark.e2e

CONF = """\
; a Lars lars_lb_agent.conf, unchanged but for the ports
[reporter]
ip = 127.0.0.1
port = {reporter}

[dnsserver]
ip = 127.0.0.1
port = {dns}

[loadbalance]
probe_num=10
init_succ_cnt=180
init_err_cnt=5
err_rate=0.1
succ_rate=0.5
contin_err_limit=15
contin_succ_limit=15
idle_timeout=15
overload_timeout=15
update_timeout=15
"""


def free_udp_base() -> int:
    """A port p with p, p+1, p+2 free for UDP (retried: ports are shared)."""
    for _ in range(200):
        base = free_port(socket.SOCK_DGRAM)
        socks = []
        try:
            for i in range(3):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no three consecutive free UDP ports")


class Proc:
    """A `lars` child whose log goes to a file (a pipe could fill and block it)."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "w", encoding="utf-8") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lars", "--log-level", "INFO", *args],
                stdout=subprocess.DEVNULL,
                stderr=fh,
            )

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, self.log.read_text(encoding="utf-8")


def get_host(peer: UdpPeer, modid: int, cmdid: int) -> lars_pb2.GetHostResponse | None:
    try:
        return peer.get_host(modid, cmdid)
    except TimeoutError:
        return None


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'lars.db'}"
    engine = make_engine(url)
    init_schema(engine)
    RouteAdmin(engine).add_host(1, 2, "10.0.0.1", 9001)
    engine.dispose()
    yield url


def test_agent_process_with_real_route_service_and_reporter(tmp_path: Path, db_url: str) -> None:
    dns_port, rep_port, base = free_port(), free_port(), free_udp_base()
    conf = tmp_path / "lars_lb_agent.conf"
    conf.write_text(CONF.format(dns=dns_port, reporter=rep_port), encoding="utf-8")
    cache = tmp_path / "routes.json"
    dns = Proc(
        tmp_path / "dns.log", "dns", "--db", db_url, "--ip", "127.0.0.1", "--port", str(dns_port)
    )
    rep = Proc(
        tmp_path / "rep.log",
        "reporter",
        "--db",
        db_url,
        "--ip",
        "127.0.0.1",
        "--port",
        str(rep_port),
    )
    agent_args = ["agent", "-c", str(conf), "--base-port", str(base), "--caller", "10.9.8.7"]
    agent = Proc(
        tmp_path / "a1.log", *agent_args, "--cache", str(cache), "--report-interval", "0.2"
    )
    procs = [agent, rep, dns]
    try:
        with UdpPeer((base, base + 1, base + 2)) as peer:
            peer.sock.settimeout(0.5)
            rsp = wait_until(lambda: (r := get_host(peer, 1, 2)) and r.retcode == 0 and r, 60)
            assert (rsp.host.ip, rsp.host.port) == (dotted_to_wire("10.0.0.1"), 9001)
            # a route change is pushed to the agent
            engine = make_engine(db_url)
            RouteAdmin(engine).add_host(1, 2, "192.168.1.177", 9002)
            high = dotted_to_wire("192.168.1.177")
            wait_until(lambda: (r := get_host(peer, 1, 2)) and r.host.ip == high, 60)
            # reports reach ServerCallStatus with our caller
            for _ in range(4):
                peer.report(1, 2, high, 9002, int(RetCode.SUCC))
            peer.report(1, 2, high, 9002, int(RetCode.SYSTEM_ERROR))

            def stored() -> object:
                with engine.connect() as conn:
                    rows = conn.execute(
                        select(server_call_status).where(server_call_status.c.port == 9002)
                    ).all()
                return rows and rows[0].succ_cnt == 4 and rows[0]

            row = wait_until(stored, 60)
            assert (row.ip, row.caller, row.err_cnt, row.overload) == (
                dotted_to_uint("192.168.1.177"), dotted_to_uint("10.9.8.7"), 1, "0"
            )  # fmt: skip
            engine.dispose()
        code, err = agent.stop()
        assert code == 0, err
        assert cache.exists()
        # restart with the route service gone: answers from the cache at once
        code, _ = dns.stop()
        assert code == 0
        agent = Proc(tmp_path / "a2.log", *agent_args, "--cache", str(cache))
        procs[0] = agent
        with UdpPeer((base, base + 1, base + 2)) as peer:
            peer.sock.settimeout(0.5)
            first = wait_until(lambda: get_host(peer, 1, 2), 60)
            assert first.retcode == 0
            assert first.host.ip in (dotted_to_wire("10.0.0.1"), high)
        code, err = agent.stop(signal.SIGINT)
        assert code == 0, err
        assert "stale" in err
    finally:
        for p in procs:
            p.stop()


def test_processes_mode_serves_each_shard_from_a_child(tmp_path: Path) -> None:
    dns = FakeRouteService().start()
    rep = FakeReporter().start()
    base = free_udp_base()
    agent = Proc(
        tmp_path / "agent.log", "agent", "--mode", "processes", "--base-port", str(base),
        "--dns", f"127.0.0.1:{dns.address[1]}", "--reporter", f"127.0.0.1:{rep.address[1]}",
        "--report-interval", "0.2",
    )  # fmt: skip
    try:
        keys = [(3, 0), (1, 0), (1, 1)]  # shards 0, 1, 2
        for key in keys:
            dns.set_route(key, [(key[0], 1000 + key[1])])
        with UdpPeer((base, base + 1, base + 2)) as peer:
            peer.sock.settimeout(0.5)
            for key in keys:
                rsp = wait_until(lambda k=key: (r := get_host(peer, *k)) and r.retcode == 0, 60)
                assert rsp
                peer.report(*key, key[0], 1000 + key[1], 0)
            for key in keys:
                assert wait_until(lambda k=key: rep.latest(k), 60).results[0].succ == 1
        # three children, each with its own route-service connection
        assert wait_until(lambda: dns.server.stats().connections == 3, 60)
    finally:
        code, log = agent.stop()
        dns.stop()
        rep.stop()
    assert code == 0, log
    assert log.count("agent listening") == 3
