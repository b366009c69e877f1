"""Recovery after a restart: how long after a restarted route service or reporter listens
again does a running `lars agent` process use it?

Real processes on fixed ephemeral ports and one SQLite file: `lars agent`, `lars dns`,
`lars reporter`. Each round stops one service (SIGTERM), keeps it down `--down`
seconds, changes what it will serve, starts it again on the same port and measures:

- route service: from the port accepting connections to the agent answering
  API_GetRoute with the host added while the service was down (the agent reconnected,
  re-asked, got the reply);
- reporter: from the port accepting connections to the row of a report made while
  the reporter was down appearing in ServerCallStatus (reconnected, sent the kept
  report, written by a writer; includes the 50 ms batch wait).

    python benchmarks/recovery.py --rounds 20 --down 3
    python benchmarks/recovery.py --rounds 5 --down 20 --only dns
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from benchmarks.dns_common import free_port, free_udp_base, machine, percentile
from lars.db import server_call_status
from lars.dbengine import init_schema, make_engine
from lars.protocol import MsgId, dotted_to_wire, lars_pb2
from lars.reactor import encode
from lars.reactor.frame import decode_datagram
from lars.routes.admin import RouteAdmin

POLL = 0.002  # seconds between probes


class Proc:
    def __init__(self, log: Path, *args: str) -> None:
        with open(log, "a", encoding="utf-8") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lars", "--log-level", "WARNING", *args],
                stdout=subprocess.DEVNULL,
                stderr=fh,
            )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.05).close()
        return True
    except OSError:
        return False


def wait(pred: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until pred(); return the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL)
    return time.monotonic()


class Agent:
    """UDP probes of the agent's ports."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.5)

    def route(self, modid: int, cmdid: int) -> set[tuple[int, int]]:
        req = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid).SerializeToString()
        port = self.base + (modid + cmdid) % 3
        self.sock.sendto(encode(int(MsgId.API_GET_ROUTE_REQUEST), req), ("127.0.0.1", port))
        try:
            _, body = decode_datagram(self.sock.recvfrom(65536)[0])
        except TimeoutError:
            return set()
        return {(h.ip, h.port) for h in lars_pb2.GetRouteResponse.FromString(body).host}

    def report(self, modid: int, cmdid: int, ip: int, port: int) -> None:
        req = lars_pb2.ReportRequest(
            modid=modid, cmdid=cmdid, host=lars_pb2.HostInfo(ip=ip, port=port), retcode=0
        )
        dst = ("127.0.0.1", self.base + (modid + cmdid) % 3)
        self.sock.sendto(encode(int(MsgId.REPORT_REQUEST), req.SerializeToString()), dst)


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name}: n={len(values)} p50={percentile(values, 50):.3f}s "
        f"p99={percentile(values, 99):.3f}s max={max(values):.3f}s min={min(values):.3f}s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--down", type=float, default=3.0, help="seconds each service stays down")
    ap.add_argument("--only", choices=("dns", "reporter"), default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lars-recovery-"))
    url = f"sqlite:///{tmp / 'lars.db'}"
    engine = make_engine(url)
    init_schema(engine)
    admin = RouteAdmin(engine)
    host = dotted_to_wire("10.0.0.1"), 9000
    admin.add_host(1, 1, "10.0.0.1", 9000)
    rounds = args.rounds
    for k in range(rounds):  # one module per reporter round, so each round's row is new
        admin.add_host(100 + k, 1, "10.0.0.1", 9000)
    dns_port, rep_port, base = free_port(), free_port(), free_udp_base()
    log = tmp / "procs.log"
    dns_args = ("dns", "--db", url, "--ip", "127.0.0.1", "--port", str(dns_port))
    rep_args = ("reporter", "--db", url, "--ip", "127.0.0.1", "--port", str(rep_port))
    dns, rep = Proc(log, *dns_args), Proc(log, *rep_args)
    agent_proc = Proc(
        log, "agent", "--dns", f"127.0.0.1:{dns_port}", "--reporter", f"127.0.0.1:{rep_port}",
        "--base-port", str(base), "--caller", "10.9.9.9",
    )  # fmt: skip
    agent = Agent(base)
    dns_times: list[float] = []
    rep_times: list[float] = []
    try:
        wait(lambda: host in agent.route(1, 1), 30, "the agent's first route")
        for k in range(rounds):
            wait(lambda k=k: host in agent.route(100 + k, 1), 10, "module routes")
        for k in range(rounds):
            if args.only != "reporter":
                time.sleep(1.5)  # a stable connection: the peer counts as seen
                dns.stop()
                new = dotted_to_wire("10.1.0.1"), 10_000 + k
                admin.add_host(1, 1, "10.1.0.1", 10_000 + k)
                time.sleep(args.down)
                dns = Proc(log, *dns_args)
                up = wait(lambda: listening(dns_port), 60, "the route service to listen")
                used = wait(lambda new=new: new in agent.route(1, 1), 60, "the new host")
                dns_times.append(used - up)
            if args.only != "dns":
                time.sleep(1.5)
                rep.stop()
                agent.report(100 + k, 1, *host)  # kept by the agent while the reporter is away
                time.sleep(args.down)
                rep = Proc(log, *rep_args)
                up = wait(lambda: listening(rep_port), 60, "the reporter to listen")

                def stored(modid: int = 100 + k) -> bool:
                    with engine.connect() as conn:
                        q = select(server_call_status.c.modid).where(
                            server_call_status.c.modid == modid
                        )
                        return conn.execute(q).first() is not None

                rep_times.append(wait(stored, 60, "the kept report stored") - up)
            print(f"round {k + 1}/{rounds} done", file=sys.stderr)
    finally:
        agent.sock.close()
        for p in (agent_proc, dns, rep):
            p.stop()
        engine.dispose()
    print(f"# {machine()}; down {args.down:.0f}s per restart")
    if dns_times:
        print(summary("route service restart -> agent uses it", dns_times))
    if rep_times:
        print(summary("reporter restart -> agent's kept report stored", rep_times))


if __name__ == "__main__":
    main()
