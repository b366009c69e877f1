"""Route push latency: a committed route edit -> its receipt by every subscribed agent.

    python -m benchmarks.dns_push_latency [--conns 1000] [--per-conn 10] [--changes 20]
                                           [--threads 0] [--poll-interval 0.1] [--sqlite]
                                           [--edit tool|sql] [--processes 1]

`lars dns` runs in its own process on a fresh MariaDB database (or SQLite) with 100
modules of one host. This process opens `--conns` connections (uvloop), each subscribing
to `--per-conn` modules (so every module has conns*per_conn/100 subscribers), then makes
`--changes` edits, one module each, at random moments relative to the poll tick:
`--edit tool` through RouteAdmin (what `lars route` and the console do), `--edit sql`
as a DBA does by hand (INSERT RouteData, INSERT RouteChange, `UPDATE RouteVersion SET
version = UNIX_TIMESTAMP()` in one transaction: several edits fall in the same second).
Latency = receipt time of the pushed GetRouteResponse - the time the edit's transaction
committed, per subscriber. Target: p99 <= 150 ms at 1,000 subscribers (poll 0.1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import struct
import time
from collections import defaultdict

import sqlalchemy
import uvloop
from sqlalchemy import text

from benchmarks.dns_common import DnsProcess, child_pids, fresh_mysql_db, machine, percentile
from benchmarks.fleet_common import ProcSample
from lars.dbengine import init_schema, make_engine
from lars.protocol import dotted_to_uint, lars_pb2
from lars.routes.admin import RouteAdmin

MODULES = 100
HEADER = struct.Struct("<ii")


class Subscriber(asyncio.Protocol):
    def __init__(self, receipts: dict[int, list[float]], replies: asyncio.Queue[int]) -> None:
        self.buf = bytearray()
        self.receipts = receipts
        self.replies = replies
        self.transport: asyncio.Transport | None = None
        self.subscribed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buf += data
        off = 0
        while len(self.buf) - off >= 8:
            _msgid, n = HEADER.unpack_from(self.buf, off)
            if len(self.buf) - off - 8 < n:
                break
            msg = lars_pb2.GetRouteResponse()
            msg.ParseFromString(bytes(self.buf[off + 8 : off + 8 + n]))
            off += 8 + n
            if self.subscribed:
                self.receipts[msg.modid].append(now)
            else:
                self.replies.put_nowait(msg.modid)
        del self.buf[:off]


def sql_edit(engine: sqlalchemy.Engine, modid: int, ip: str, port: int) -> None:
    """A DBA's edit in plain SQL, the original's convention for the version."""
    now = "UNIX_TIMESTAMP()" if engine.dialect.name != "sqlite" else "CAST(strftime('%s') AS INT)"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO RouteData (modid, cmdid, serverip, serverport) "
                f"VALUES ({modid}, 1, {dotted_to_uint(ip)}, {port})"
            )
        )
        conn.execute(
            text(f"INSERT INTO RouteChange (modid, cmdid, version) VALUES ({modid}, 1, {now})")
        )
        conn.execute(text(f"UPDATE RouteVersion SET version = {now} WHERE id = 1"))


def dns_cpu(pid: int) -> float:
    """CPU seconds of the route service: the process and, with --processes, its children."""
    return sum(ProcSample(p).cpu for p in [pid, *child_pids(pid)])


async def run(
    args: argparse.Namespace,
    port: int,
    admin: RouteAdmin,
    engine: sqlalchemy.Engine,
    dns_pid: int,
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    receipts: dict[int, list[float]] = defaultdict(list)
    replies: asyncio.Queue[int] = asyncio.Queue()
    subs: list[Subscriber] = []
    for i in range(args.conns):
        _t, proto = await loop.create_connection(
            lambda: Subscriber(receipts, replies), "127.0.0.1", port
        )
        subs.append(proto)
        payload = b""
        for j in range(args.per_conn):
            modid = (i * args.per_conn + j) % MODULES + 1
            body = lars_pb2.GetRouteRequest(modid=modid, cmdid=1).SerializeToString()
            payload += HEADER.pack(1, len(body)) + body
        assert proto.transport is not None
        proto.transport.write(payload)
    for _ in range(args.conns * args.per_conn):
        await asyncio.wait_for(replies.get(), 60)
    for s in subs:
        s.subscribed = True
    expected = args.conns * args.per_conn // MODULES
    rng = random.Random(1)
    latencies: list[float] = []
    missing = 0
    cpu0, client0 = dns_cpu(dns_pid), time.process_time()
    for k in range(args.changes):
        modid = (k * 37) % MODULES + 1
        await asyncio.sleep(rng.uniform(0, args.poll_interval))
        receipts[modid].clear()
        if args.edit == "sql":
            await loop.run_in_executor(None, sql_edit, engine, modid, f"10.1.{k}.1", 1000 + k)
        else:
            await loop.run_in_executor(None, admin.add_host, modid, 1, f"10.1.{k}.1", 1000 + k)
        committed = time.monotonic()
        deadline = committed + 10 * args.poll_interval + 10
        while len(receipts[modid]) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        got = receipts[modid]
        missing += max(0, expected - len(got))
        latencies.extend(t - committed for t in got)
    dns_ms = (dns_cpu(dns_pid) - cpu0) * 1000 / args.changes
    client_ms = (time.process_time() - client0) * 1000 / args.changes
    for s in subs:
        if s.transport is not None:
            s.transport.close()
    return {
        # CPU per edit over the push phase (the route service's processes, this client):
        # on a machine of os.cpu_count() cores a round cannot take less than their sum
        # divided by the cores, whatever the route service does
        "dns_cpu_ms_per_edit": round(dns_ms, 1),
        "client_cpu_ms_per_edit": round(client_ms, 1),
        "cpu_floor_ms": round((dns_ms + client_ms) / (os.cpu_count() or 1), 1),
        "samples": len(latencies),
        "missing": missing,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--per-conn", type=int, default=10)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--poll-interval", type=float, default=0.1)
    ap.add_argument("--edit", choices=("tool", "sql"), default="tool")
    ap.add_argument("--sqlite", action="store_true", help="SQLite instead of MariaDB")
    ap.add_argument(
        "--processes", type=int, default=1, help="lars dns --processes N (one port, SO_REUSEPORT)"
    )
    args = ap.parse_args()
    before = machine()
    with fresh_mysql_db() as url:
        if args.sqlite:
            url = f"sqlite:////tmp/lars_bench_push_{time.time_ns()}.db"
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine)
        for m in range(1, MODULES + 1):
            admin.add_host(m, 1, "10.0.0.1", 80)
        dns = DnsProcess(
            [
                "--db",
                url,
                "--ip",
                "127.0.0.1",
                "--port",
                "0",
                "--threads",
                str(args.threads),
                "--poll-interval",
                str(args.poll_interval),
                *(["--processes", str(args.processes)] if args.processes > 1 else []),
            ]
        )
        try:
            result = uvloop.run(run(args, dns.port, admin, engine, dns.proc.pid))
        finally:
            dns.stop()
            engine.dispose()
    result.update(
        conns=args.conns,
        per_conn=args.per_conn,
        changes=args.changes,
        threads=args.threads,
        processes=args.processes,
        poll_interval=args.poll_interval,
        edit=args.edit,
        db="sqlite" if args.sqlite else "mariadb",
        machine_before=before,
        machine_after=machine(),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
