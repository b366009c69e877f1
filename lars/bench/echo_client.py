"""The echo benchmark client: N connections over P processes, ping-pong or pipelined.

Each process runs one uvloop loop with raw asyncio protocols (no streams, no Router):
a connection keeps `depth` requests in flight (depth 1 is the classic ping-pong), and
every read is checked by an EchoChecker and answered with as many new requests in one
write. A process reports its reply count on stdout every SAMPLE_PERIOD; the parent
(echo_run) turns those into one QPS figure per second and a median.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from lars.bench.echo_ring import DEFAULT_CONTENT, EchoChecker, EchoRing
from lars.config import check_ranges, ranged
from lars.reactor.loop import new_event_loop

__all__ = ["ClientConfig", "EchoClientProtocol", "ParentLink", "main", "run_connections"]

log = logging.getLogger(__name__)

SAMPLE_PERIOD = 0.02
RING_SIZE = 1 << 16
MAX_DEPTH = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """What every client process needs; passed to the worker processes as JSON."""

    # Network
    host: str = "127.0.0.1"
    port: int = ranged(7777, 1, 65535, name="bench client --port")
    # Load
    conns: int = ranged(10, 1, 100_000, name="bench client --conns")
    procs: int = ranged(1, 1, 256, name="bench client --procs")
    depth: int = ranged(1, 1, MAX_DEPTH, name="bench client --depth")
    content: str = DEFAULT_CONTENT
    use_uvloop: bool = True
    # Timeouts
    seconds: float = ranged(10.0, 0.01, 86400.0, name="bench client --seconds", unit="s")
    connect_timeout: float = ranged(5.0, 0.01, 300.0, name="bench client connect timeout")

    def __post_init__(self) -> None:
        check_ranges(self)  # ConfigError (exit 2) naming the flag and its range
        if self.procs > self.conns:
            raise ValueError(f"procs ({self.procs}) cannot exceed conns ({self.conns})")

    def conns_of(self, index: int) -> int:
        """Connections of process `index`: conns spread as evenly as possible."""
        share, extra = divmod(self.conns, self.procs)
        return share + (1 if index < extra else 0)


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
            self.running = False
            log.error("%s; closing the connection", exc)
            self.transport.abort()
            return
        if n:
            self.replies += n
            if self.running:
                self._send(n)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.running:  # the server closed it during the run: the figures are wrong
            self.errors += 1
            log.error("connection lost during the run: %s", exc or "closed by the server")
        if not self.lost.done():
            self.lost.set_result(None)


class ParentLink:
    """The worker's side of the pipes to the parent: stdin says go (a line) and stop (EOF);
    stdout carries `connected N`, then `count REPLIES ERRORS` lines."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.go = asyncio.Event()
        self.stop = asyncio.Event()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.rfd, self._readable)

    def detach(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_reader(self.rfd)

    def _readable(self) -> None:
        data = os.read(self.rfd, 4096)
        if data:
            self.go.set()
        else:
            self.go.set()
            self.stop.set()
            asyncio.get_running_loop().remove_reader(self.rfd)

    def say(self, line: str) -> None:
        os.write(self.wfd, line.encode("ascii") + b"\n")


async def run_connections(cfg: ClientConfig, index: int, link: ParentLink) -> None:
    """Open this process's connections, run them between go and stop, report counts."""
    loop = asyncio.get_running_loop()
    ring = EchoRing(size=RING_SIZE, window=cfg.depth, content=cfg.content)
    protos: list[EchoClientProtocol] = []
    link.attach(loop)
    try:
        first = sum(cfg.conns_of(i) for i in range(index))
        for k in range(cfg.conns_of(index)):
            offset = ((first + k) * 4099) % RING_SIZE  # distinct ids per connection
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    functools.partial(EchoClientProtocol, ring, offset, cfg.depth),
                    cfg.host,
                    cfg.port,
                ),
                cfg.connect_timeout,
            )
            protos.append(proto)
        link.say(f"connected {len(protos)}")
        deadline = cfg.seconds + 60.0  # never outlive a vanished parent
        await asyncio.wait_for(link.go.wait(), deadline)
        cpu_start = time.process_time()
        for proto in protos:
            proto.start()
        while not link.stop.is_set():
            try:
                await asyncio.wait_for(link.stop.wait(), SAMPLE_PERIOD)
            except TimeoutError:
                pass
            link.say(_counts(protos))
        link.say(f"cpu {time.process_time() - cpu_start:.6f}")
    finally:
        link.detach(loop)
        for proto in protos:
            proto.running = False
            proto.transport.close()
        if protos:
            await asyncio.wait([p.lost for p in protos], timeout=5.0)
    link.say(_counts(protos))


def _counts(protos: list[EchoClientProtocol]) -> str:
    replies = sum(p.replies for p in protos)
    errors = sum(p.errors for p in protos)
    return f"count {replies} {errors}"


def main(argv: list[str]) -> int:
    """Worker process: `python -m lars.bench.echo_client INDEX CONFIG_JSON`."""
    index, cfg = int(argv[0]), ClientConfig(**json.loads(argv[1]))
    logging.basicConfig(level=logging.WARNING, format="echo client %(process)d: %(message)s")
    link = ParentLink(sys.stdin.fileno(), sys.stdout.fileno())
    loop = new_event_loop(cfg.use_uvloop)
    try:
        loop.run_until_complete(run_connections(cfg, index, link))
    except (OSError, TimeoutError) as exc:
        log.error("process %d: %s", index, exc)
        return 1
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
