"""What the agents' heartbeat costs a route service: CPU of `lars dns` with N connections.

Each of N connections (one per simulated agent) sends the agent's probe, a GetRouteRequest
for module (0, 0), every --interval seconds (phases spread evenly), and reads the answer;
`--interval 0` keeps the connections idle (the cost without heartbeats). Reported: the
route service's CPU (user + system, /proc) per second of wall time, as % of one core, and
the probes answered.

    python benchmarks/dns_heartbeat_cost.py --conns 1000 --interval 0.25 --seconds 10
    python benchmarks/dns_heartbeat_cost.py --conns 1000 --interval 0 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import tempfile
import time

from benchmarks.dns_common import DnsProcess, machine
from lars.protocol import MsgId, lars_pb2

HEADER = struct.Struct("<ii")
PROBE = lars_pb2.GetRouteRequest(modid=0, cmdid=0).SerializeToString()
FRAME = HEADER.pack(int(MsgId.GET_ROUTE_REQUEST), len(PROBE)) + PROBE


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def agent(port: int, interval: float, phase: float, stop: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if interval <= 0:
            await asyncio.sleep(max(0.0, stop - time.monotonic()))
            return
        await asyncio.sleep(phase)
        while time.monotonic() < stop:
            writer.write(FRAME)
            head = await reader.readexactly(HEADER.size)
            await reader.readexactly(HEADER.unpack(head)[1])
            counts[0] += 1
            await asyncio.sleep(interval)
    finally:
        writer.close()


async def drive(port: int, conns: int, interval: float, seconds: float) -> int:
    counts = [0]
    stop = time.monotonic() + seconds
    tasks = [
        agent(port, interval, interval * i / conns if interval else 0.0, stop, counts)
        for i in range(conns)
    ]
    await asyncio.gather(*tasks)
    return counts[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/lars.db"
        dns = DnsProcess(["--db", db, "--ip", "127.0.0.1", "--port", "0"])
        try:
            time.sleep(1.0)
            cpu0, wall0 = cpu_seconds(dns.proc.pid), time.monotonic()
            answered = asyncio.run(drive(dns.port, args.conns, args.interval, args.seconds))
            cpu1, wall1 = cpu_seconds(dns.proc.pid), time.monotonic()
        finally:
            dns.stop()
    share = (cpu1 - cpu0) / (wall1 - wall0) * 100
    print(f"{args.conns} connections, probe every {args.interval} s, {args.seconds:.0f} s: "
          f"{answered / (wall1 - wall0):.0f} probes/s answered, route service CPU "
          f"{share:.1f} % of one core ({machine()})")  # fmt: skip


if __name__ == "__main__":
    main()
