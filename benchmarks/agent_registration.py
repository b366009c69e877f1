"""Self-registration through a real agent (issue 20): register -> served, killed -> gone,
deregister -> gone, and a registration storm through one agent.

    python -m benchmarks.agent_registration [--rounds 20] [--subs 1000] [--storm 1000]
                                            [--storm-subs 10] [--sqlite]

`lars dns` (poll 0.1 s, lease 10 s) runs on a fresh MariaDB database (or SQLite) and
`lars agent` (default checks: tcp, 1 s interval, 0.5 s timeout, failing after 2, passing
after 1) in its own process. `--subs` TCP connections subscribe to every module used,
as agents do (GetRouteRequest, then pushes); a subscriber stands for an agent, which
applies a push within a millisecond. Each round uses its own module (one static host in
RouteData beside the registered one):

1. a TCP listener (the business process) registers through the agent
   (AsyncLarsClient.register, check tcp): register -> served = the moment each
   subscriber receives the push that adds it - the start of the register call;
2. after a random 0-1 s (any phase of the check cycle) the listener is closed, as a
   killed process's port is: killed -> gone = the push that removes it at each
   subscriber - the close (the agent's check must notice first);
3. a second listener registers, is served, then deregisters: deregister -> gone = the
   push that removes it - the start of the deregister call.

Storm: `--storm` instances (ttl:600 checks, no probes) of one module registered through
the one agent as fast as one AsyncLarsClient sends them (64 in flight); register call
latency, the time until each of `--storm-subs` subscribers of that module (10: a push of
a 1,000-host module to all 1,000 would measure this script's parsing) has them all, the
agent's file writes and InstanceSync messages (from its /metrics).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import uvloop

from benchmarks.dns_common import (
    DnsProcess,
    free_port,
    free_udp_base,
    fresh_mysql_db,
    machine,
    percentile,
)
from lars.client import AsyncLarsClient
from lars.dbengine import init_schema, make_engine
from lars.protocol import dotted_to_wire, lars_pb2
from lars.routes.admin import RouteAdmin

HEADER = struct.Struct("<ii")
LOCAL = dotted_to_wire("127.0.0.1")
STORM_MODULE = (900, 1)


class Subscriber(asyncio.Protocol):
    """One agent-like connection: the hosts of each module and when they last changed."""

    def __init__(self, changed: asyncio.Event) -> None:
        self.buf = bytearray()
        self.hosts: dict[tuple[int, int], set[tuple[int, int]]] = {}
        self.seen: dict[tuple[int, int, int, int], float] = {}  # (m, c, ip, port) -> added at
        self.gone: dict[tuple[int, int, int, int], float] = {}  # -> removed at
        self.changed = changed
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def ask(self, modules: list[tuple[int, int]]) -> None:
        assert self.transport is not None
        out = bytearray()
        for modid, cmdid in modules:
            body = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid).SerializeToString()
            out += HEADER.pack(1, len(body)) + body
        self.transport.write(bytes(out))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buf += data
        off = 0
        while len(self.buf) - off >= 8:
            msgid, size = HEADER.unpack_from(self.buf, off)
            if len(self.buf) - off - 8 < size:
                break
            body = bytes(self.buf[off + 8 : off + 8 + size])
            off += 8 + size
            if msgid != 2:
                continue
            msg = lars_pb2.GetRouteResponse.FromString(body)
            key = (msg.modid, msg.cmdid)
            new = {(h.ip, h.port) for h in msg.host}
            old = self.hosts.get(key, set())
            for ip, port in new - old:
                self.seen[(*key, ip, port)] = now
            for ip, port in old - new:
                self.gone[(*key, ip, port)] = now
            self.hosts[key] = new
        del self.buf[:off]
        self.changed.set()


async def wait_all(
    subs: list[Subscriber], what: str, key: tuple[int, int, int, int], deadline: float = 60
) -> list[float]:
    """The time each subscriber recorded `what` ("seen"/"gone") for `key`."""
    end = time.monotonic() + deadline
    while True:
        times = [getattr(s, what).get(key) for s in subs]
        if all(t is not None for t in times):
            return [t for t in times if t is not None]
        if time.monotonic() > end:
            missing = sum(t is None for t in times)
            raise RuntimeError(f"{missing} subscribers never saw {what} {key}")
        await asyncio.sleep(0.005)


async def listener() -> tuple[asyncio.Server, int]:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as rsp:
        for line in rsp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return float("nan")


def ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


async def run(
    args: argparse.Namespace, dns_port: int, base: int, metrics: str
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    rng = random.Random(args.seed)
    changed = asyncio.Event()
    modules = [(100 + i, 1) for i in range(args.rounds)]
    subs: list[Subscriber] = []
    for i in range(args.subs):
        _, sub = await loop.create_connection(lambda: Subscriber(changed), "127.0.0.1", dns_port)
        sub.ask([*modules, STORM_MODULE] if i < args.storm_subs else modules)
        subs.append(sub)
    await asyncio.sleep(1.0)
    client = AsyncLarsClient(base_port=base, timeout=1.0)
    await client.open()
    served: list[float] = []
    killed: list[float] = []
    deregistered: list[float] = []
    try:
        deadline = time.monotonic() + 60  # the agent may still be starting
        while not (await client.deregister(1, 1, "127.0.0.1", 1)).answered:
            if time.monotonic() > deadline:
                raise RuntimeError("the agent did not answer in 60 s")
            await asyncio.sleep(0.2)
        for modid, cmdid in modules:
            server, port = await listener()
            key = (modid, cmdid, LOCAL, port)
            t0 = time.monotonic()
            await client.register(modid, cmdid, "127.0.0.1", port)
            served += [t - t0 for t in await wait_all(subs, "seen", key)]
            await asyncio.sleep(rng.random())  # a kill at any phase of the 1 s check cycle
            server.close()
            await server.wait_closed()
            t_kill = time.monotonic()
            killed += [t - t_kill for t in await wait_all(subs, "gone", key)]
            await client.deregister(modid, cmdid, "127.0.0.1", port)
            server, port = await listener()
            key = (modid, cmdid, LOCAL, port)
            await client.register(modid, cmdid, "127.0.0.1", port)
            await wait_all(subs, "seen", key)
            t_dereg = time.monotonic()
            result = await client.deregister(modid, cmdid, "127.0.0.1", port)
            assert result.ok, result
            deregistered += [t - t_dereg for t in await wait_all(subs, "gone", key)]
            server.close()
            await server.wait_closed()
        storm = await run_storm(args, client, subs[: args.storm_subs], metrics)
    finally:
        client.close()
        for sub in subs:
            if sub.transport is not None:
                sub.transport.close()
    return {
        "register_to_served": ms(served),
        "killed_to_gone": ms(killed),
        "deregister_to_gone": ms(deregistered),
        "storm": storm,
    }


async def run_storm(
    args: argparse.Namespace, client: AsyncLarsClient, subs: list[Subscriber], metrics: str
) -> dict[str, object]:
    if not args.storm:
        return {}
    writes0 = metric(metrics, "lars_agent_registrations_file_writes_total")
    syncs0 = metric(metrics, "lars_agent_instance_syncs_sent_total")
    rtts: list[float] = []
    gate = asyncio.Semaphore(64)

    async def one(port: int) -> None:
        async with gate:
            t = time.monotonic()
            await client.register(*STORM_MODULE, "10.7.0.1", port, check="ttl:600")
            rtts.append(time.monotonic() - t)

    t0 = time.monotonic()
    await asyncio.gather(*(one(10000 + i) for i in range(args.storm)))
    t_acked = time.monotonic() - t0
    want = {(dotted_to_wire("10.7.0.1"), 10000 + i) for i in range(args.storm)}
    end = time.monotonic() + 120
    while not all(want <= s.hosts.get(STORM_MODULE, set()) for s in subs):
        if time.monotonic() > end:
            raise RuntimeError("the storm was not served in 120 s")
        await asyncio.sleep(0.01)
    t_served = time.monotonic() - t0
    result = {
        "registrations": args.storm,
        "all_acked_s": round(t_acked, 3),
        "register_call": ms(rtts),
        "all_served_by_every_subscriber_s": round(t_served, 3),
        "agent_file_writes": metric(metrics, "lars_agent_registrations_file_writes_total")
        - writes0,
        "agent_syncs": metric(metrics, "lars_agent_instance_syncs_sent_total") - syncs0,
    }
    for port in range(10000, 10000 + args.storm):
        await client.deregister(*STORM_MODULE, "10.7.0.1", port)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--subs", type=int, default=1000)
    ap.add_argument("--storm", type=int, default=1000)
    ap.add_argument("--storm-subs", type=int, default=10)
    ap.add_argument("--sqlite", action="store_true")
    ap.add_argument("--seed", type=int, default=1, help="random phases of the kills")
    args = ap.parse_args()
    before = machine()
    with fresh_mysql_db() as url, tempfile.TemporaryDirectory() as tmp:
        if args.sqlite:
            url = f"sqlite:///{Path(tmp) / 'lars.db'}"
        engine = make_engine(url)
        init_schema(engine)
        admin = RouteAdmin(engine)
        for i in range(args.rounds):
            admin.add_host(100 + i, 1, "10.0.0.1", 80)
        admin.add_host(*STORM_MODULE, "10.0.0.1", 80)
        engine.dispose()
        dns = DnsProcess(["--db", url, "--ip", "127.0.0.1", "--port", "0", "--metrics", "off"])
        base, metrics_port = free_udp_base(), free_port()
        agent = subprocess.Popen(
            [sys.executable, "-m", "lars", "--log-level", "WARNING", "agent",
             "--base-port", str(base), "--dns", f"127.0.0.1:{dns.port}",
             "--reporter", "127.0.0.1:1", "--metrics", f"127.0.0.1:{metrics_port}",
             "--registrations", str(Path(tmp) / "agent.registrations.json")],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            result = uvloop.run(run(args, dns.port, base, f"http://127.0.0.1:{metrics_port}"))
        finally:
            agent.terminate()
            agent.wait(30)
            dns.stop()
    result.update(
        rounds=args.rounds,
        subs=args.subs,
        db="sqlite" if args.sqlite else "mariadb",
        machine_before=before,
        machine_after=machine(),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
