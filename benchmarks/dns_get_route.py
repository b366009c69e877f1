"""GetRouteRequest reply throughput: a 10-host module asked over many connections.

    python -m benchmarks.dns_get_route [--conns 50] [--depth 16] [--seconds 10] [--threads 0]

`lars dns` runs in its own process on SQLite with one module of 10 hosts (addresses from
192.168.0.0, so they are 10-byte varints on the wire, the costly case). The client (one
uvloop process) keeps `--depth` requests in flight on each of `--conns` connections, as
an agent pipelining requests does, and counts complete reply frames (headers only; one
reply is parsed and checked first). Reported: replies/s, median of one-second samples,
and replies per CPU-second of the server process (less sensitive to a loaded machine).
Target: >= 50,000 replies/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import tempfile
import time
from pathlib import Path

import uvloop

from benchmarks.dns_common import DnsProcess, machine
from lars.dbengine import init_schema, make_engine
from lars.protocol import lars_pb2
from lars.routes.admin import RouteAdmin

HEADER = struct.Struct("<ii")
MODID, CMDID = 7, 3


class Asker(asyncio.Protocol):
    def __init__(self, depth: int, counter: list[int]) -> None:
        body = lars_pb2.GetRouteRequest(modid=MODID, cmdid=CMDID).SerializeToString()
        self.request = HEADER.pack(1, len(body)) + body
        self.depth = depth
        self.counter = counter
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.first: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request * self.depth)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        off, size, done = 0, len(buf), 0
        while size - off >= 8:
            n = HEADER.unpack_from(buf, off)[1]
            if size - off - 8 < n:
                break
            if not self.first.done():
                self.first.set_result(buf[off + 8 : off + 8 + n])
            off += 8 + n
            done += 1
        self.buf = buf[off:]
        if done:
            self.counter[0] += done
            assert self.transport is not None
            self.transport.write(self.request * done)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace, port: int, pid: int) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    counter = [0]
    askers = []
    for _ in range(args.conns):
        _t, proto = await loop.create_connection(
            lambda: Asker(args.depth, counter), "127.0.0.1", port
        )
        askers.append(proto)
    reply = lars_pb2.GetRouteResponse()
    reply.ParseFromString(await asyncio.wait_for(askers[0].first, 30))
    assert (reply.modid, reply.cmdid, len(reply.host)) == (MODID, CMDID, 10)
    await asyncio.sleep(1.0)  # warm-up
    samples = []
    total0, cpu0 = counter[0], cpu_seconds(pid)
    for _ in range(args.seconds):
        start, t0 = counter[0], time.monotonic()
        await asyncio.sleep(1.0)
        samples.append((counter[0] - start) / (time.monotonic() - t0))
    server_cpu = cpu_seconds(pid) - cpu0
    total = counter[0] - total0
    for a in askers:
        if a.transport is not None:
            a.transport.close()
    return {
        "replies_per_s_median": round(statistics.median(samples)),
        "replies_per_s_best": round(max(samples)),
        "samples": [round(s) for s in samples],
        "server_cpu_s": round(server_cpu, 2),
        "replies_per_server_cpu_s": round(total / server_cpu) if server_cpu else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    before = machine()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'lars.db'}"
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine)
        for h in range(10):
            admin.add_host(MODID, CMDID, f"192.168.0.{h + 1}", 9000 + h)
        engine.dispose()
        dns = DnsProcess(
            ["--db", url, "--ip", "127.0.0.1", "--port", "0", "--threads", str(args.threads)]
        )
        try:
            result = uvloop.run(run(args, dns.port, dns.proc.pid))
        finally:
            dns.stop()
    result.update(
        conns=args.conns,
        depth=args.depth,
        threads=args.threads,
        machine_before=before,
        machine_after=machine(),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
