"""Restore's delay to the agent: `lars route restore` commits -> the restored table is
pushed to an agent's connection and the hold ends.

    python -m benchmarks.dns_restore_delay [--modules 10] [--hosts 3] [--rounds 5]
                                           [--poll-interval 0.1]

A fresh MariaDB database with `--modules` modules of `--hosts` hosts; `lars dns` and
`lars agent` run in their own processes, and this process holds one more route
connection subscribed to every module, as an agent's is. Each round: a DBA's
`DELETE FROM RouteData` and version bump (the route service holds it and keeps serving
the last good table: the agent keeps every module), then `RouteAdmin.restore_served()`
(what `lars route restore` runs) writes the served table back. Measured: the restore
transaction itself; from its commit until the route service's push of every restored
module (all hosts) reaches the subscribed connection (what an agent receives); and until
the hold has ended (the route service's 'apply' row). The agent is checked to answer
every module with all its hosts throughout. Issue 18.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.dns_common import (
    DnsProcess,
    free_port,
    free_udp_base,
    fresh_mysql_db,
    machine,
    percentile,
)
from lars.dbengine import init_schema, make_engine
from lars.protocol import MsgId, lars_pb2
from lars.reactor import encode
from lars.reactor.frame import decode_datagram
from lars.routes.admin import RouteAdmin
from lars.routes.audit import AuditLog

HEADER = struct.Struct("<ii")


class Subscriber:
    """One route connection subscribed to every module (as an agent's route client)."""

    def __init__(self, port: int, modules: list[tuple[int, int]]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = bytearray()
        for m, c in modules:
            req = lars_pb2.GetRouteRequest(modid=m, cmdid=c)
            self.sock.sendall(encode(int(MsgId.GET_ROUTE_REQUEST), req.SerializeToString()))
        for _ in modules:
            self.frame()

    def frame(self) -> tuple[int, int, int]:
        """The next GetRouteResponse: (modid, cmdid, hosts)."""
        while True:
            if len(self.buf) >= 8:
                _msgid, n = HEADER.unpack_from(self.buf)
                if len(self.buf) >= 8 + n:
                    body = bytes(self.buf[8 : 8 + n])
                    del self.buf[: 8 + n]
                    msg = lars_pb2.GetRouteResponse.FromString(body)
                    return msg.modid, msg.cmdid, len(msg.host)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the route service closed the connection")
            self.buf += data

    def pushed(self, modules: list[tuple[int, int]], hosts: int) -> float:
        """Read pushes until every module arrived with all its hosts; the time then."""
        left = set(modules)
        while left:
            m, c, n = self.frame()
            if n == hosts:
                left.discard((m, c))
        return time.monotonic()

    def close(self) -> None:
        self.sock.close()


class AgentClient:
    """Asks the agent's three UDP ports for a module's hosts (API_GET_ROUTE)."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.5)

    def hosts(self, modid: int, cmdid: int) -> int:
        req = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid)
        port = self.base + (modid + cmdid) % 3
        self.sock.sendto(
            encode(int(MsgId.API_GET_ROUTE_REQUEST), req.SerializeToString()), ("127.0.0.1", port)
        )
        try:
            data, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            return -1
        _msgid, body = decode_datagram(data)
        return len(lars_pb2.GetRouteResponse.FromString(body).host)

    def complete(self, modules: list[tuple[int, int]], hosts: int) -> bool:
        return all(self.hosts(m, c) == hosts for m, c in modules)

    def close(self) -> None:
        self.sock.close()


def wait(pred: object, timeout: float = 60.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(0.002)
    raise TimeoutError("gave up waiting")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", type=int, default=10)
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--poll-interval", type=float, default=0.1)
    args = ap.parse_args()
    before = machine()
    modules = [(m, 1) for m in range(1, args.modules + 1)]
    with fresh_mysql_db() as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine, actor="bench")
        for m, c in modules:
            for h in range(args.hosts):
                admin.add_host(m, c, f"10.{m // 250}.{m % 250}.{h + 1}", 9000)
        dns = DnsProcess(
            ["--db", url, "--port", "0", "--poll-interval", str(args.poll_interval),
             "--metrics", "off", "--snapshot", str(Path(tmp) / "dns.guard")]
        )  # fmt: skip
        base = free_udp_base()
        agent = subprocess.Popen(
            [sys.executable, "-m", "lars", "--log-level", "WARNING", "agent",
             "--base-port", str(base), "--dns", f"127.0.0.1:{dns.port}",
             "--reporter", f"127.0.0.1:{free_port()}", "--metrics", "off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = AgentClient(base)
        sub = Subscriber(dns.port, modules)
        commit_ms: list[float] = []
        delays_ms: list[float] = []
        ended_ms: list[float] = []
        try:
            wait(lambda: client.complete(modules, args.hosts))
            for _ in range(args.rounds):
                with engine.begin() as conn:
                    conn.exec_driver_sql("DELETE FROM RouteData")
                    conn.exec_driver_sql("UPDATE RouteVersion SET version = version + 1")
                wait(lambda: AuditLog(engine).hold_state() is not None)
                time.sleep(0.3)  # the hold settles; the agent still has every module
                assert client.complete(modules, args.hosts), "the agent lost modules"
                started = time.monotonic()
                admin.restore_served(actor="bench")
                committed = time.monotonic()
                pushed = sub.pushed(modules, args.hosts)
                ended = wait(lambda: AuditLog(engine).hold_state() is None)
                assert client.complete(modules, args.hosts), "the agent lost modules"
                commit_ms.append((committed - started) * 1000)
                delays_ms.append((pushed - committed) * 1000)
                ended_ms.append((ended - committed) * 1000)
        finally:
            sub.close()
            client.close()
            agent.terminate()
            agent.wait(30)
            dns.stop()
            engine.dispose()
    print(
        json.dumps(
            {
                "modules": args.modules,
                "hosts": args.modules * args.hosts,
                "rounds": args.rounds,
                "restore_commit_ms": [round(v, 1) for v in commit_ms],
                "push_to_agent_ms": [round(v, 1) for v in delays_ms],
                "push_p50_ms": round(percentile(delays_ms, 50), 1),
                "push_max_ms": round(max(delays_ms), 1),
                "hold_ended_ms": [round(v, 1) for v in ended_ms],
                "poll_interval": args.poll_interval,
                "machine_before": before,
                "machine_after": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
