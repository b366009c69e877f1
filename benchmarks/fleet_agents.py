"""A load-generator process of simulated agents for the fleet benchmarks (issue 22 item 4).

Not run by hand: `benchmarks/dns_fleet_push.py` and `benchmarks/dns_failover.py` start
one or more of these as separate processes (`python -m benchmarks.fleet_agents CFG_JSON`)
and drive them over stdin/stdout, one JSON object a line.

Each simulated agent is one TCP connection (uvloop) that behaves like `lars agent`'s route
client where it matters to a route service:
- on every (re)connection it asks GetRouteRequest for each of its `per_conn` modules
  (the agent re-asks every module it holds on connect) and so subscribes to them;
- the heartbeat of lars/agent/liveness.py: a connection silent for 0.9 `heartbeat`
  seconds asks the probe module HEARTBEAT_KEY (0, 0); checked every `heartbeat` / 2 in
  buckets, so about 4 probes a second per idle agent at the default 0.25 s, as the agent;
- after losing its connection it reconnects with the real policy: `ReconnectPolicy.delays`
  (lars/reactor/backoff.py) with the peer "seen" when the connection had lasted
  STABLE_AFTER, to another address chosen as TcpClient._next_index does (uniformly among
  the others), the first address chosen at random as TcpClient does.

Commands (stdin) and answers (stdout):
  watch MODID IP   -> {"ok": 1}: from now record, per agent, the first GetRouteResponse
                      for MODID that holds host IP (a push, or the answer after a reconnect)
  count MODID      -> {"n"}: how many agents have recorded it so far
  result MODID     -> {"modid", "times": [...], "moved": [...]}: those receipt times
                      (time.monotonic(), comparable across processes on Linux) and, per
                      time, whether that agent had reconnected since the last `mark`
  mark             -> {"ok": 1}: forget the reconnect records (before a kill)
  failover         -> {"lost", "resubscribed", "connects", "setup", "pending"}: the
                      agents that lost their connection since `mark`: when, when each
                      connected again, when every module was answered again on the new
                      connection, and that last step's duration per agent (setup)
  stats            -> {"probes", "replies", "connected", "by_port": {...}}
  stop             -> exits
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import struct
import sys
import time
from collections import Counter
from typing import Any

import uvloop

from lars.agent.liveness import HEARTBEAT_KEY
from lars.protocol import MsgId, dotted_to_uint, lars_pb2
from lars.reactor.backoff import ReconnectPolicy
from lars.reactor.tcp_client import STABLE_AFTER

HEADER = struct.Struct("<ii")
REQ = int(MsgId.GET_ROUTE_REQUEST)


def raise_nofile(want: int) -> int:
    """Raise this process's open-file limit towards `want` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard) if hard != resource.RLIM_INFINITY else max(soft, want)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def request(modid: int, cmdid: int) -> bytes:
    body = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid).SerializeToString()
    return HEADER.pack(REQ, len(body)) + body


PROBE = request(*HEARTBEAT_KEY)


class Fleet:
    """All simulated agents of this process and what they recorded."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.addrs: list[tuple[str, int]] = [tuple(a) for a in cfg["addrs"]]  # type: ignore[misc]
        self.heartbeat: float = cfg.get("heartbeat", 0.25)
        self.policy = ReconnectPolicy()
        self.rng = random.Random(cfg.get("seed", 1))
        self.watch: dict[int, int] = {}
        self.seen: dict[int, dict[int, float]] = {}
        self.moved_since_mark: set[int] = set()
        self.lost: dict[int, float] = {}
        self.resubscribed: dict[int, float] = {}
        self.connects: dict[int, float] = {}
        self.probes = 0
        self.replies = 0
        self.stopping = False
        n, per, modules, first = cfg["agents"], cfg["per_conn"], cfg["modules"], cfg["first"]
        self.agents = [
            Agent(self, first + i, [((first + i) * per + j) % modules + 1 for j in range(per)])
            for i in range(n)
        ]

    def now(self) -> float:
        return time.monotonic()


class Agent(asyncio.Protocol):
    """One simulated agent's route connection."""

    def __init__(self, fleet: Fleet, index: int, modules: list[int]) -> None:
        self.fleet = fleet
        self.index = index
        self.modules = modules
        self.subscribe_frame = b"".join(request(m, 1) for m in modules)
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.heard = 0.0
        self.pending = 0  # answers still due on this connection's subscribe
        self.addr_index = fleet.rng.randrange(len(fleet.addrs))
        self.connected_at = 0.0
        self.seen_at: float | None = None
        self.ready: asyncio.Future[None] | None = None

    async def connect_loop(self, first: bool) -> None:
        loop = asyncio.get_running_loop()
        delays = None if first else self.fleet.policy.delays(self.seen_at, time.monotonic)
        if delays is not None:
            await asyncio.sleep(next(delays))
        while not self.fleet.stopping:
            host, port = self.fleet.addrs[self.addr_index]
            try:
                await loop.create_connection(lambda: self, host, port)
                return
            except OSError:
                self.addr_index = self._next_index(self.addr_index)
                if delays is None:
                    delays = self.fleet.policy.delays(self.seen_at, time.monotonic)
                await asyncio.sleep(next(delays))

    def _next_index(self, failed: int) -> int:
        n = len(self.fleet.addrs)
        if n == 1:
            return 0
        choice = self.fleet.rng.randrange(n - 1)
        return choice if choice < failed else choice + 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        now = time.monotonic()
        self.connected_at = self.heard = now
        self.buf.clear()
        self.pending = len(self.modules)
        if self.index in self.fleet.lost:
            self.fleet.connects[self.index] = now
        self.transport.write(self.subscribe_frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.fleet.stopping:
            return
        now = time.monotonic()
        if now - self.connected_at >= STABLE_AFTER:
            self.seen_at = now
        self.fleet.lost[self.index] = now
        self.fleet.moved_since_mark.add(self.index)
        self.addr_index = self._next_index(self.addr_index)
        asyncio.get_running_loop().create_task(self.connect_loop(first=False))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.heard = now
        buf = self.buf
        buf += data
        off = 0
        fleet = self.fleet
        while len(buf) - off >= 8:
            _msgid, n = HEADER.unpack_from(buf, off)
            if len(buf) - off - 8 < n:
                break
            body = bytes(buf[off + 8 : off + 8 + n])
            off += 8 + n
            msg = lars_pb2.GetRouteResponse()
            msg.ParseFromString(body)
            modid = msg.modid
            if modid == 0:
                fleet.replies += 1
                continue
            if self.pending:
                self.pending -= 1
                if not self.pending:
                    if self.ready is not None and not self.ready.done():
                        self.ready.set_result(None)
                    if self.index in fleet.lost:
                        fleet.resubscribed[self.index] = now
            ip = fleet.watch.get(modid)
            if ip is not None:
                seen = fleet.seen[modid]
                if self.index not in seen and any(h.ip & 0xFFFFFFFF == ip for h in msg.host):
                    seen[self.index] = now
        del buf[:off]

    def probe(self, now: float) -> None:
        if self.transport is not None and now - self.heard >= 0.9 * self.fleet.heartbeat:
            self.transport.write(PROBE)
            self.fleet.probes += 1


async def heartbeats(fleet: Fleet) -> None:
    """Each agent checked every interval / 2 (Heartbeat.period), in 5 buckets spread over
    that period; a probe goes out when nothing arrived for 0.9 interval, as the agent's."""
    if fleet.heartbeat <= 0:
        return
    buckets = 5
    tick = 0
    while not fleet.stopping:
        await asyncio.sleep(fleet.heartbeat / 2 / buckets)
        now = time.monotonic()
        for agent in fleet.agents[tick % buckets :: buckets]:
            agent.probe(now)
        tick += 1


def emit(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(cfg: dict[str, Any]) -> None:
    raise_nofile(cfg["agents"] + 100)
    fleet = Fleet(cfg)
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    for agent in fleet.agents:
        agent.ready = loop.create_future()
        await agent.connect_loop(first=True)
    await asyncio.wait_for(asyncio.gather(*(a.ready for a in fleet.agents if a.ready)), 300)
    emit({"ready": len(fleet.agents), "connect_s": round(time.monotonic() - t0, 2)})
    hb = loop.create_task(heartbeats(fleet))
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    deadline = time.monotonic() + cfg.get("max_seconds", 600)
    while time.monotonic() < deadline:
        try:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode().split()
        except TimeoutError:
            continue
        if not line or line[0] == "stop":
            break
        cmd = line[0]
        if cmd == "watch":
            modid = int(line[1])
            fleet.seen[modid] = {}
            fleet.watch[modid] = dotted_to_uint(line[2])
            emit({"ok": 1})
        elif cmd == "count":
            emit({"n": len(fleet.seen.get(int(line[1]), {}))})
        elif cmd == "result":
            modid = int(line[1])
            seen = fleet.seen.get(modid, {})
            fleet.watch.pop(modid, None)
            emit(
                {
                    "modid": modid,
                    "times": list(seen.values()),
                    "moved": [i in fleet.moved_since_mark for i in seen],
                }
            )
        elif cmd == "mark":
            fleet.moved_since_mark.clear()
            fleet.lost.clear()
            fleet.resubscribed.clear()
            fleet.connects.clear()
            emit({"ok": 1})
        elif cmd == "failover":
            emit(
                {
                    "lost": list(fleet.lost.values()),
                    "resubscribed": list(fleet.resubscribed.values()),
                    "connects": list(fleet.connects.values()),
                    "setup": [
                        fleet.resubscribed[i] - c
                        for i, c in fleet.connects.items()
                        if i in fleet.resubscribed
                    ],
                    "pending": sum(1 for i in fleet.lost if i not in fleet.resubscribed),
                }
            )
        elif cmd == "stats":
            ports = Counter(
                fleet.addrs[a.addr_index][1] for a in fleet.agents if a.transport is not None
            )
            emit(
                {
                    "probes": fleet.probes,
                    "replies": fleet.replies,
                    "connected": sum(ports.values()),
                    "by_port": {str(k): v for k, v in ports.items()},
                }
            )
    fleet.stopping = True
    hb.cancel()
    for agent in fleet.agents:
        if agent.transport is not None:
            agent.transport.close()
    await asyncio.sleep(0.1)


if __name__ == "__main__":
    uvloop.run(main(json.loads(sys.argv[1])))
