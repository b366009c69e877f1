"""Worker: one loop's share of a TcpServer.

It owns the connections adopted on its loop (and a free `state` dict for the
application, e.g. route subscriptions), sweeps their partial-frame timers, and drains
them on stop. Everything here runs on the worker's own loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lars.reactor.config import BufferLimits, ReactorConfig
from lars.reactor.connection import Connection, Counters, sweep_partial_frames
from lars.reactor.loop import LoopThread
from lars.reactor.router import Router

__all__ = ["ConnHook", "Worker", "WorkerHooks"]

ConnHook = Callable[[Connection], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerHooks:
    """What a worker needs from the server that owns it, and nothing more."""

    config: ReactorConfig
    router: Router
    next_id: Callable[[], int]  # a connection id unique across the server
    release_slot: Callable[[], None]  # a connection counted against max_conns has ended
    on_connect: ConnHook | None = None
    on_close: ConnHook | None = None


class Worker:
    """One loop's share of the server: its connections and a free `state` dict."""

    def __init__(self, hooks: WorkerHooks, index: int, thread: LoopThread) -> None:
        self.hooks = hooks
        self.index = index
        self.thread = thread
        self.connections: dict[int, Connection] = {}
        self.state: dict[str, Any] = {}
        self.counters = Counters()
        self.limits: BufferLimits = hooks.config.buffers
        self._sweeper: asyncio.TimerHandle | None = None
        self._adopting: set[asyncio.Task[Any]] = set()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        self.thread.post(fn, *args)

    # ConnectionOwner

    def connection_made(self, conn: Connection) -> None:
        self.connections[conn.id] = conn
        self.counters.accepted += 1
        if self.hooks.on_connect is not None:
            try:
                self.hooks.on_connect(conn)
            except Exception:  # uvloop would otherwise leave the connection half set up
                log.exception("on_connect hook failed for %r", conn)

    def connection_lost(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        self.counters.closed += 1
        self.hooks.release_slot()
        if self.hooks.on_close is not None:
            try:
                self.hooks.on_close(conn)
            except Exception:
                log.exception("on_close hook failed for %r", conn)

    # on the worker's loop

    def start_sweeper(self) -> None:
        """Begin sweeping partial-frame timers; call on the worker's loop."""
        frame_timeout = self.hooks.config.frame_timeout
        interval = min(1.0, frame_timeout / 4)

        def sweep() -> None:
            sweep_partial_frames(self.connections.values(), frame_timeout, self.counters)
            self._sweeper = self.thread.loop.call_later(interval, sweep)

        self._sweeper = self.thread.loop.call_later(interval, sweep)

    def adopt(self, sock: socket.socket) -> None:
        """Take an accepted socket onto this loop; call on the worker's loop."""
        loop = self.thread.loop
        conn_id = self.hooks.next_id()
        router = self.hooks.router

        async def adopt() -> None:
            try:
                await loop.connect_accepted_socket(lambda: Connection(self, router, conn_id), sock)
            except Exception:  # the loop is closing, or the socket died in flight
                sock.close()
                self.hooks.release_slot()

        task = loop.create_task(adopt())
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def drain(self, timeout: float) -> None:
        """Close every connection, waiting up to `timeout` s; run on the worker's loop."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Sockets accepted just before stop may still be in our queue or being adopted:
        # close every round, and wait for those too, not only the ones seen first.
        while True:
            for conn in list(self.connections.values()):
                conn.close()
            await asyncio.sleep(0.01)
            if not (self.connections or self._adopting) or loop.time() >= deadline:
                break
        for conn in list(self.connections.values()):
            conn.abort()
        await asyncio.sleep(0)  # let connection_lost callbacks run
