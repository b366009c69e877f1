"""Self-registration at the route service (issue 20): latency, scale and a storm.

    python -m benchmarks.registration latency [--conns 1000] [--per-conn 10] [--changes 20]
                                              [--background 0] [--sqlite]
    python -m benchmarks.registration scale [--instances 10000] [--per-agent 5]
                                            [--seconds 30] [--sqlite]
    python -m benchmarks.registration storm [--registrations 1000] [--within 1.0] [--sqlite]

`lars dns` runs in its own process ([dns] lease 10, poll 0.1 s) on a fresh MariaDB
database (or SQLite) with 100 modules of one static host. Scripted agents speak the
wire like a lars agent: INSTANCE_SYNC (msgid 9) with their full set, INSTANCE_SYNC_ACK
back.

- latency: `--conns` subscriber connections subscribe to `--per-conn` of the 100
  modules each (conns*per_conn/100 subscribers per module). `--changes` times, a new
  agent registers one instance in one module; then it deregisters (an empty sync).
  Latency = receipt of the push at each subscriber - the moment the sync was sent (the
  route service has it a loopback hop later): register -> served by every agent, and
  deregister -> gone from every agent. Also printed: the route service's table loads
  during the run and their mean duration (lars_dns_reload_duration_seconds).
  `--background N` first registers N instances
  (N/5 agents renewing every lease/3 s) so the loads carry them.
- scale: `--instances` instances over agents of `--per-agent` each, every agent on its
  own connection renewing every lease/3 s as a lars agent does. After they are all
  served, `--seconds` of steady state: the route service's RSS and CPU (from /proc),
  and database statements per second (MariaDB's Com_insert/update/delete/select deltas:
  global, so other load on the server counts too; the lars_dns_registration_writes
  metric is exact and printed too).
- storm: `--registrations` agents each register one instance spread over `--within`
  seconds (one connection each); then: how long until every one is served, whether
  the guard held anything (it must not: additions are never held), none lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import struct
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import sqlalchemy
import uvloop
from sqlalchemy import text

from benchmarks.dns_common import DnsProcess, free_port, fresh_mysql_db, machine, percentile
from lars.dbengine import init_schema, make_engine
from lars.protocol import dotted_to_wire, lars_pb2
from lars.routes.admin import RouteAdmin

MODULES = 100
LEASE = 10.0
HEADER = struct.Struct("<ii")
SYNC, ACK = 9, 10
TASKS: set[asyncio.Future[None]] = set()  # the renewal tasks (kept referenced)


class Conn(asyncio.Protocol):
    """A route-service connection: records pushes per module and acks."""

    def __init__(self, on_route: Callable[[lars_pb2.GetRouteResponse, float], None]) -> None:
        self.buf = bytearray()
        self.on_route = on_route
        self.transport: asyncio.Transport | None = None
        self.acks = 0
        self.replies = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buf += data
        off = 0
        while len(self.buf) - off >= 8:
            msgid, n = HEADER.unpack_from(self.buf, off)
            if len(self.buf) - off - 8 < n:
                break
            body = bytes(self.buf[off + 8 : off + 8 + n])
            off += 8 + n
            if msgid == ACK:
                self.acks += 1
            elif msgid == 2:
                msg = lars_pb2.GetRouteResponse()
                msg.ParseFromString(body)
                self.replies += 1
                self.on_route(msg, now)
        del self.buf[:off]

    def send(self, msgid: int, body: bytes) -> None:
        assert self.transport is not None
        self.transport.write(HEADER.pack(msgid, len(body)) + body)


def sync_body(agent: str, seq: int, instances: list[tuple[int, str, int]]) -> bytes:
    msg = lars_pb2.InstanceSync(agent=agent, seq=seq)
    for modid, ip, port in instances:
        msg.instances.add(modid=modid, cmdid=1, ip=dotted_to_wire(ip), port=port, passing=True)
    return msg.SerializeToString()


def route_request(modid: int) -> bytes:
    body = lars_pb2.GetRouteRequest(modid=modid, cmdid=1).SerializeToString()
    return HEADER.pack(1, len(body)) + body


class Agent:
    """A scripted lars agent: one connection, a fixed set, renewing every lease/3 s."""

    def __init__(self, conn: Conn, name: str, instances: list[tuple[int, str, int]]) -> None:
        self.conn, self.name, self.instances, self.seq = conn, name, instances, 0

    def sync(self) -> None:
        self.seq += 1
        self.conn.send(SYNC, sync_body(self.name, self.seq, self.instances))

    async def renew(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(random.uniform(0, LEASE / 3))
        while not stop.is_set():
            self.sync()
            try:
                await asyncio.wait_for(stop.wait(), LEASE / 3)
            except TimeoutError:
                pass


async def connect(port: int, on_route: Callable[[lars_pb2.GetRouteResponse, float], None]) -> Conn:
    loop = asyncio.get_running_loop()
    _t, proto = await loop.create_connection(lambda: Conn(on_route), "127.0.0.1", port)
    return proto


def _ignore(_msg: lars_pb2.GetRouteResponse, _now: float) -> None:
    pass


async def background(port: int, n: int, per_agent: int, stop: asyncio.Event) -> list[Agent]:
    agents = []
    for a in range(n // per_agent):
        conn = await connect(port, _ignore)
        insts = [
            ((a * per_agent + i) % MODULES + 1, f"10.{100 + a // 250}.{a % 250}.{i + 1}", 3000 + i)
            for i in range(per_agent)
        ]
        agent = Agent(conn, f"10.{100 + a // 250}.{a % 250}.0:8888", insts)
        agent.sync()
        agents.append(agent)
        TASKS.add(asyncio.ensure_future(agent.renew(stop)))
    return agents


async def latency(args: argparse.Namespace, port: int) -> dict[str, object]:
    stop = asyncio.Event()
    if args.background:
        await background(port, args.background, 5, stop)
        await asyncio.sleep(3)
    seen: dict[int, dict[int, tuple[set[tuple[int, int]], float]]] = defaultdict(dict)
    subs: list[Conn] = []
    for i in range(args.conns):

        def on_route(msg: lars_pb2.GetRouteResponse, now: float, i: int = i) -> None:
            seen[msg.modid][i] = ({(h.ip, h.port) for h in msg.host}, now)

        conn = await connect(port, on_route)
        assert conn.transport is not None
        conn.transport.write(
            b"".join(
                route_request((i * args.per_conn + j) % MODULES + 1) for j in range(args.per_conn)
            )
        )
        subs.append(conn)
    deadline = time.monotonic() + 120
    while sum(c.replies for c in subs) < args.conns * args.per_conn:
        assert time.monotonic() < deadline, "subscriptions not answered"
        await asyncio.sleep(0.01)
    subscribers: dict[int, list[int]] = defaultdict(list)
    for i in range(args.conns):
        for j in range(args.per_conn):
            subscribers[(i * args.per_conn + j) % MODULES + 1].append(i)
    registrar = await connect(port, _ignore)
    rng = random.Random(1)
    reg_lat: list[float] = []
    dereg_lat: list[float] = []
    missing = 0

    async def wait_all(
        modid: int, sent: float, want: Callable[[set[tuple[int, int]]], bool], out: list[float]
    ) -> int:
        end = sent + 30
        while time.monotonic() < end:
            got = [seen[modid].get(i) for i in subscribers[modid]]
            if all(g is not None and g[1] >= sent and want(g[0]) for g in got):
                break
            await asyncio.sleep(0.002)
        lost = 0
        for i in subscribers[modid]:
            g = seen[modid].get(i)
            if g is not None and g[1] >= sent and want(g[0]):
                out.append(g[1] - sent)
            else:
                lost += 1
        return lost

    for k in range(args.changes):
        modid = (k * 37) % MODULES + 1
        host = (dotted_to_wire(f"10.1.{k}.1"), 2000 + k)
        agent = f"10.1.{k}.1:8888"
        await asyncio.sleep(rng.uniform(0, 0.1))
        sent = time.monotonic()
        registrar.send(SYNC, sync_body(agent, 1, [(modid, f"10.1.{k}.1", 2000 + k)]))
        missing += await wait_all(modid, sent, lambda hosts, h=host: h in hosts, reg_lat)
        await asyncio.sleep(rng.uniform(0, 0.1))
        sent = time.monotonic()
        registrar.send(SYNC, sync_body(agent, 2, []))
        missing += await wait_all(modid, sent, lambda hosts, h=host: h not in hosts, dereg_lat)
    stop.set()
    for c in [*subs, registrar]:
        if c.transport is not None:
            c.transport.close()

    def ms(values: list[float], p: float) -> float:
        return round(percentile(values, p) * 1000, 1)

    return {
        "register_samples": len(reg_lat),
        "register_p50_ms": ms(reg_lat, 50),
        "register_p99_ms": ms(reg_lat, 99),
        "register_max_ms": round(max(reg_lat) * 1000, 1) if reg_lat else None,
        "deregister_samples": len(dereg_lat),
        "deregister_p50_ms": ms(dereg_lat, 50),
        "deregister_p99_ms": ms(dereg_lat, 99),
        "deregister_max_ms": round(max(dereg_lat) * 1000, 1) if dereg_lat else None,
        "missing": missing,
    }


def proc_sample(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def db_counters(engine: sqlalchemy.Engine) -> dict[str, int]:
    if engine.dialect.name == "sqlite":
        return {}
    names = ("Com_insert", "Com_update", "Com_delete", "Com_select", "Com_commit")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SHOW GLOBAL STATUS WHERE Variable_name IN :n"), {"n": names}
        ).all()
    return {str(k): int(v) for k, v in rows}


def scrape(metrics_port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read()
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def served_count(port: int, modules: int = MODULES) -> int:
    """Hosts served over the modules (asked on a fresh connection), static ones excluded."""
    counts: dict[int, int] = {}
    done = asyncio.Event()

    def on_route(msg: lars_pb2.GetRouteResponse, _now: float) -> None:
        counts[msg.modid] = len(msg.host) - 1  # minus the static host
        if len(counts) == modules:
            done.set()

    conn = await connect(port, on_route)
    assert conn.transport is not None
    conn.transport.write(b"".join(route_request(m) for m in range(1, modules + 1)))
    await asyncio.wait_for(done.wait(), 60)
    conn.transport.close()
    return sum(counts.values())


async def scale(
    args: argparse.Namespace, dns: DnsProcess, engine: sqlalchemy.Engine, metrics: int
) -> dict[str, object]:
    stop = asyncio.Event()
    _cpu0, rss0 = proc_sample(dns.proc.pid)
    started = time.monotonic()
    agents = await background(dns.port, args.instances, args.per_agent, stop)
    deadline = time.monotonic() + 300
    while (n := await served_count(dns.port)) < len(agents) * args.per_agent:
        assert time.monotonic() < deadline, f"only {n} served"
        await asyncio.sleep(0.5)
    all_served = time.monotonic() - started
    await asyncio.sleep(LEASE)  # let the first renewals settle
    cpu1, _ = proc_sample(dns.proc.pid)
    db1, w1 = db_counters(engine), scrape(metrics, "lars_dns_registration_writes_total")
    t1 = time.monotonic()
    await asyncio.sleep(args.seconds)
    cpu2, rss2 = proc_sample(dns.proc.pid)
    db2, w2 = db_counters(engine), scrape(metrics, "lars_dns_registration_writes_total")
    elapsed = time.monotonic() - t1
    held = scrape(metrics, "lars_dns_table_held")
    stop.set()
    for a in agents:
        if a.conn.transport is not None:
            a.conn.transport.close()
    return {
        "instances": len(agents) * args.per_agent,
        "agents": len(agents),
        "all_served_s": round(all_served, 2),
        "rss_mb_before": round(rss0 / 2**20, 1),
        "rss_mb": round(rss2 / 2**20, 1),
        "cpu_pct_steady": round((cpu2 - cpu1) / elapsed * 100, 1),
        "registration_transactions_per_s": round((w2 - w1) / elapsed, 2),
        "db_statements_per_s": {k: round((db2[k] - db1[k]) / elapsed, 1) for k in db2},
        "held": held,
        "steady_seconds": round(elapsed, 1),
    }


async def storm(args: argparse.Namespace, dns: DnsProcess, metrics: int) -> dict[str, object]:
    stop = asyncio.Event()
    conns = [await connect(dns.port, _ignore) for _ in range(args.registrations)]
    started = time.monotonic()
    for k, conn in enumerate(conns):
        agent = Agent(
            conn,
            f"10.3.{k // 250}.{k % 250 + 1}:8888",
            [(k % MODULES + 1, f"10.3.{k // 250}.{k % 250 + 1}", 4000)],
        )
        agent.sync()
        TASKS.add(asyncio.ensure_future(agent.renew(stop)))
        await asyncio.sleep(
            max(0.0, started + args.within * (k + 1) / len(conns) - time.monotonic())
        )
    sent = time.monotonic() - started
    deadline = time.monotonic() + 120
    while (n := await served_count(dns.port)) < args.registrations:
        assert time.monotonic() < deadline, f"only {n} of {args.registrations} served"
        await asyncio.sleep(0.05)
    last_served = time.monotonic() - started
    acks = sum(c.acks for c in conns)
    result = {
        "registrations": args.registrations,
        "sent_within_s": round(sent, 2),
        "all_served_after_s": round(last_served, 2),
        "served": n,
        "acks": acks,
        "holds": scrape(metrics, "lars_dns_holds_total"),
        "held_now": scrape(metrics, "lars_dns_table_held"),
        "transactions": scrape(metrics, "lars_dns_registration_writes_total"),
    }
    stop.set()
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("latency", "scale", "storm"))
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--per-conn", type=int, default=10)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--background", type=int, default=0)
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--per-agent", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--registrations", type=int, default=1000)
    ap.add_argument("--within", type=float, default=1.0)
    ap.add_argument("--sqlite", action="store_true", help="SQLite instead of MariaDB")
    args = ap.parse_args()
    before = machine()
    with fresh_mysql_db() as url, tempfile.TemporaryDirectory() as tmp:
        if args.sqlite:
            url = f"sqlite:///{tmp}/lars.db"
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine)
        for m in range(1, MODULES + 1):
            admin.add_host(m, 1, "10.0.0.1", 80)
        conf = Path(tmp) / "dns.conf"
        conf.write_text(f"[dns]\nlease = {LEASE}\nsnapshot = off\n", encoding="utf-8")
        metrics = free_port()
        dns = DnsProcess(
            [
                "-c",
                str(conf),
                "--db",
                url,
                "--ip",
                "127.0.0.1",
                "--port",
                "0",
                "--poll-interval",
                "0.1",
                "--metrics",
                f"127.0.0.1:{metrics}",
            ]
        )
        try:
            if args.mode == "latency":
                s0 = scrape(metrics, "lars_dns_reload_duration_seconds_sum")
                n0 = scrape(metrics, "lars_dns_reload_duration_seconds_count")
                result = uvloop.run(latency(args, dns.port))
                s1 = scrape(metrics, "lars_dns_reload_duration_seconds_sum")
                n1 = scrape(metrics, "lars_dns_reload_duration_seconds_count")
                result["route_table_loads"] = n1 - n0
                result["mean_load_ms"] = round((s1 - s0) / max(1.0, n1 - n0) * 1000, 1)
            elif args.mode == "scale":
                result = uvloop.run(scale(args, dns, engine, metrics))
            else:
                result = uvloop.run(storm(args, dns, metrics))
        finally:
            dns.stop()
            engine.dispose()
    result.update(
        mode=args.mode,
        db="sqlite" if args.sqlite else "mariadb",
        machine_before=before,
        machine_after=machine(),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
