"""TcpClient: a framed TCP client that reconnects forever.

Runs on a LoopThread it is given. On every (re)connection it calls `on_connect(client)`,
so the application can resubscribe. With several addresses it moves, after a failure, to
another one chosen at random (never the one that just failed), waiting between attempts
the delays of a ReconnectPolicy (about 1 s at most, jittered, while the peer was seen in
the last 5 minutes; growing up to 10 s for a peer away longer or never reached). The
delays start over once a connection has lasted STABLE_AFTER seconds (a server that
accepts and closes at once, e.g. one at max_conns, is backed off and does not count as
seen). A `backoff_factory` replaces the policy with a fixed schedule (tests).

While disconnected, `send` fails fast with NotConnected (queue_limit=0, the default:
callers that resend on reconnect, such as the agent, want no stale backlog), or queues
up to `queue_limit` frames and then raises QueueFull. Nothing is ever queued unbounded.

A peer whose packets silently vanish leaves a TCP connection open for many minutes. With
`user_timeout` the kernel aborts the connection once sent data stays unacknowledged that
long (TCP_USER_TIMEOUT); an application that sends nothing on its own probes the peer and
calls `drop()` when no answer comes (the agent's route client does).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from lars.errors import NotConnected, QueueFull
from lars.reactor.backoff import BackoffFactory, ReconnectPolicy
from lars.reactor.config import BufferLimits
from lars.reactor.connection import Connection, Counters, sweep_partial_frames
from lars.reactor.frame import encode
from lars.reactor.loop import LoopThread
from lars.reactor.router import Router
from lars.reactor.tcpopts import set_user_timeout

__all__ = ["TcpClient"]

log = logging.getLogger(__name__)

ClientHook = Callable[["TcpClient"], None]

STABLE_AFTER = 1.0  # seconds a connection must last before the reconnect delays start over


class TcpClient:
    def __init__(
        self,
        thread: LoopThread,
        router: Router,
        addresses: Sequence[tuple[str, int]],
        *,
        name: str = "tcp-client",
        on_connect: ClientHook | None = None,
        on_disconnect: ClientHook | None = None,
        backoff_factory: BackoffFactory | None = None,
        policy: ReconnectPolicy | None = None,
        connect_timeout: float = 3.0,
        queue_limit: int = 0,
        frame_timeout: float = 30.0,
        limits: BufferLimits | None = None,
        rng: random.Random | None = None,
        user_timeout: float | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("TcpClient needs at least one address")
        self.thread = thread
        self.router = router
        self.addresses = list(addresses)
        self.name = name
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self._backoff_factory = backoff_factory
        self.policy = policy or ReconnectPolicy()
        self.seen_at: float | None = None  # loop time the last stable connection ended
        self._connect_timeout = connect_timeout
        self._queue_limit = queue_limit
        self._frame_timeout = frame_timeout
        self._user_timeout = user_timeout
        self.limits = limits or BufferLimits()
        self._rng = rng or random.Random()
        self.counters = Counters()
        self._queue: deque[bytes] = deque()
        self._conn: Connection | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ids = 0
        self.connects = 0
        self.connect_failures = 0
        self.send_drops = 0
        self.drops = 0  # connections abandoned by drop()
        self.current_address: tuple[str, int] | None = None

    # lifecycle (any thread)

    def start(self) -> None:
        self.thread.call(self._start).result()

    def stop(self, timeout: float = 5.0) -> None:
        if not self.thread.running:
            return
        try:
            self.thread.submit(self._stop()).result(timeout)
        except Exception:  # pragma: no cover - loop already closing
            log.debug("%s: stop failed", self.name, exc_info=True)

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed

    # loop thread

    def _start(self) -> None:
        if self._task is not None:  # a second task would open a second connection
            raise RuntimeError(f"{self.name} was already started")
        self._task = self.thread.loop.create_task(self._run(), name=self.name)

    async def _stop(self) -> None:
        self._stopping = True
        conn = self._conn
        if conn is not None:
            conn.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._conn is not None:
            self._conn.abort()
            self._conn = None
        self._queue.clear()

    def _outage_delays(self) -> Iterator[float]:
        if self._backoff_factory is not None:
            return self._backoff_factory()
        return self.policy.delays(self.seen_at, self.thread.loop.time, self._rng)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delays: Iterator[float] | None = None  # the current outage's, until a stable link
        index = self._rng.randrange(len(self.addresses))
        outage_logged = False
        while not self._stopping:
            host, port = self.addresses[index]
            self._ids += 1
            conn_id = self._ids
            factory = functools.partial(Connection, self, self.router, conn_id)
            try:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(factory, host, port), self._connect_timeout
                )
            except (TimeoutError, OSError) as exc:
                self.connect_failures += 1
                if not outage_logged:
                    log.warning(
                        "%s: cannot connect to %s:%d (%s); retrying", self.name, host, port, exc
                    )
                    outage_logged = True
                index = self._next_index(index)
                delays = delays or self._outage_delays()
                await asyncio.sleep(next(delays))
                continue
            if self._stopping:  # stop() raced the connect: 3.11's wait_for may eat the cancel
                conn.abort()
                break
            self._set_user_timeout(conn)
            if outage_logged:
                log.info("%s: connected to %s:%d", self.name, host, port)
            else:
                log.debug("%s: connected to %s:%d", self.name, host, port)
            outage_logged = False
            started = loop.time()
            await self._serve(conn, (host, port))
            if self._stopping:
                break
            if loop.time() - started >= STABLE_AFTER:
                self.seen_at = loop.time()
                delays = None
            log.warning("%s: connection to %s:%d lost; reconnecting", self.name, host, port)
            outage_logged = True
            index = self._next_index(index)
            delays = delays or self._outage_delays()
            await asyncio.sleep(next(delays))

    async def _serve(self, conn: Connection, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._closed_waiter = waiter
        self._conn = conn
        if conn.closed:  # the peer closed before we got here: connection_lost saw no waiter
            waiter.set_result(None)
        self.current_address = address
        self.connects += 1
        if self._queue:
            queued, self._queue = self._queue, deque()
            conn.send_many(queued)
        if self.on_connect is not None:
            try:
                self.on_connect(self)
            except Exception:
                log.exception("%s: on_connect hook failed", self.name)
        interval = min(1.0, self._frame_timeout / 4)
        try:
            while not waiter.done():
                await asyncio.wait([waiter], timeout=interval)
                sweep_partial_frames([conn], self._frame_timeout, self.counters)
        finally:
            self._conn = None
            self.current_address = None
            if not conn.closed:
                conn.abort()
            if self.on_disconnect is not None:
                try:
                    self.on_disconnect(self)
                except Exception:
                    log.exception("%s: on_disconnect hook failed", self.name)

    def _set_user_timeout(self, conn: Connection) -> None:
        if not self._user_timeout or conn.transport is None:
            return
        sock = conn.transport.get_extra_info("socket")
        if sock is not None:
            set_user_timeout(sock, self._user_timeout)

    def drop(self, reason: str) -> None:
        """Loop thread only: abandon the current connection (a silent peer) and reconnect,
        to another address when there are several."""
        conn = self._conn
        if conn is None or conn.closed:
            return
        log.warning("%s: %s: %s; dropping the connection", self.name, conn.peer, reason)
        self.drops += 1
        conn.abort()

    def _next_index(self, failed: int) -> int:
        n = len(self.addresses)
        if n == 1:
            return 0
        choice = self._rng.randrange(n - 1)
        return choice if choice < failed else choice + 1

    # ConnectionOwner

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        self.thread.post(fn, *args)

    def connection_made(self, conn: Connection) -> None:
        self.counters.accepted += 1

    def connection_lost(self, conn: Connection) -> None:
        self.counters.closed += 1
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done() and conn is self._conn:
            waiter.set_result(None)

    # sending

    def send(self, msgid: int, body: bytes = b"") -> None:
        """Send now, or queue within the bound; on the client's loop thread only."""
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.send(msgid, body)
            return
        if self._queue_limit == 0:
            raise NotConnected(f"{self.name}: not connected")
        if len(self._queue) >= self._queue_limit:
            raise QueueFull(f"{self.name}: {self._queue_limit} frames queued while disconnected")
        self._queue.append(encode(msgid, body))

    def send_threadsafe(self, msgid: int, body: bytes = b"") -> None:
        """Post a send from any thread; a refused send is counted, not raised."""
        self.thread.post(self._send_counted, msgid, body)

    def _send_counted(self, msgid: int, body: bytes) -> None:
        try:
            self.send(msgid, body)
        except (NotConnected, QueueFull):
            self.send_drops += 1
