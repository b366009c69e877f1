"""The echo benchmark client: N connections over P processes, ping-pong or pipelined.

Each process runs one uvloop loop with raw asyncio protocols (no streams, no Router):
a connection keeps `depth` requests in flight (depth 1 is the classic ping-pong), and
every read is checked by an EchoChecker and answered with as many new requests in one
write. Processes publish their reply counts to shared memory every SAMPLE_PERIOD; the
parent turns those into one QPS figure per second and a median (see echo_run).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing.sharedctypes
import time
from dataclasses import dataclass
from typing import Any, cast

from lars.bench.echo_ring import DEFAULT_CONTENT, EchoChecker, EchoRing
from lars.reactor.loop import new_event_loop

__all__ = [
    "CONNECTED",
    "ERRORS",
    "REPLIES",
    "ROW",
    "STATE_RUN",
    "STATE_STOP",
    "STATE_WAIT",
    "ClientConfig",
    "EchoClientProtocol",
    "Slots",
    "new_slots",
    "run_process",
]

log = logging.getLogger(__name__)

SAMPLE_PERIOD = 0.02
RING_SIZE = 1 << 16


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """What every client process needs; picklable for multiprocessing."""

    # Network
    host: str = "127.0.0.1"
    port: int = 7777
    # Load
    conns: int = 10
    procs: int = 1
    depth: int = 1
    content: str = DEFAULT_CONTENT
    use_uvloop: bool = True
    # Timeouts
    seconds: float = 10.0
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.conns < 1 or self.procs < 1 or self.depth < 1:
            raise ValueError("conns, procs and depth must be >= 1")
        if self.procs > self.conns:
            raise ValueError(f"procs ({self.procs}) cannot exceed conns ({self.conns})")
        if self.seconds <= 0:
            raise ValueError("seconds must be > 0")

    def conns_of(self, index: int) -> int:
        """Connections of process `index`: conns spread as evenly as possible."""
        share, extra = divmod(self.conns, self.procs)
        return share + (1 if index < extra else 0)


# Shared memory: one row of ROW cells per process, then one control cell (a STATE_*).
REPLIES, ERRORS, CONNECTED, ROW = range(4)
STATE_WAIT, STATE_RUN, STATE_STOP = 0, 1, 2
Slots = Any  # a multiprocessing RawArray of unsigned long long


class EchoClientProtocol(asyncio.Protocol):
    """One benchmark connection: keeps `depth` requests in flight, checks every reply."""

    __slots__ = (
        "checker",
        "depth",
        "errors",
        "lost",
        "replies",
        "ring",
        "running",
        "sent",
        "transport",
    )

    def __init__(self, ring: EchoRing, offset: int, depth: int) -> None:
        self.ring = ring
        self.depth = depth
        self.checker = EchoChecker(ring, offset)
        self.sent = offset
        self.replies = 0
        self.errors = 0
        self.running = True
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def start(self) -> None:
        """Put the first `depth` requests in flight (connections open before the clock runs)."""
        if not self.transport.is_closing():
            self._send(self.depth)

    def _send(self, n: int) -> None:
        self.transport.write(self.ring.frames(self.sent, n))
        self.sent += n

    def data_received(self, data: bytes) -> None:
        checker = self.checker
        try:
            n = checker.feed(data, self.sent - checker.pos)
        except ValueError as exc:
            self.errors += 1
            log.error("%s; closing the connection", exc)
            self.transport.abort()
            return
        if n:
            self.replies += n
            if self.running:
                self._send(n)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


async def _run_connections(cfg: ClientConfig, index: int, slots: Slots) -> None:
    loop = asyncio.get_running_loop()
    base = index * ROW
    ring = EchoRing(size=RING_SIZE, window=cfg.depth, content=cfg.content)
    protos: list[EchoClientProtocol] = []
    first = sum(cfg.conns_of(i) for i in range(index))
    for k in range(cfg.conns_of(index)):
        offset = ((first + k) * 4099) % RING_SIZE  # distinct ids per connection
        _, proto = await asyncio.wait_for(
            loop.create_connection(
                functools.partial(EchoClientProtocol, ring, offset, cfg.depth), cfg.host, cfg.port
            ),
            cfg.connect_timeout,
        )
        protos.append(proto)
    slots[base + CONNECTED] = len(protos)
    control = len(slots) - 1
    deadline = time.monotonic() + cfg.seconds + 30.0  # never outlive a vanished parent
    while slots[control] == STATE_WAIT and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    for proto in protos:
        proto.start()
    while slots[control] == STATE_RUN and time.monotonic() < deadline:
        await asyncio.sleep(SAMPLE_PERIOD)
        slots[base + REPLIES] = sum(p.replies for p in protos)
        slots[base + ERRORS] = sum(p.errors for p in protos)
    for proto in protos:
        proto.running = False
        proto.transport.close()
    await asyncio.wait([p.lost for p in protos], timeout=5.0)
    slots[base + REPLIES] = sum(p.replies for p in protos)
    slots[base + ERRORS] = sum(p.errors for p in protos)


def run_process(cfg: ClientConfig, index: int, slots: Slots) -> None:
    """Entry point of client process `index` (run by multiprocessing)."""
    loop = new_event_loop(cfg.use_uvloop)
    try:
        loop.run_until_complete(_run_connections(cfg, index, slots))
    except Exception as exc:
        log.error("echo client process %d failed: %s", index, exc)
        slots[index * ROW + ERRORS] += 1
        raise SystemExit(1) from exc
    finally:
        loop.close()


def new_slots(procs: int) -> Slots:
    ctx = multiprocessing.get_context("spawn")
    return cast(Slots, ctx.RawArray("Q", procs * ROW + 1))
