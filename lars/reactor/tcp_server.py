"""TcpServer: a master loop accepts, worker loops own the connections.

The master accepts sockets and hands each one, round-robin, to a worker through the
worker's task queue; from then on the socket, its Connection and any per-connection
state live on that worker's thread only. threads=0 makes the master serve connections
itself (the fastest setting under the GIL for cheap handlers).
"""

from __future__ import annotations

import concurrent.futures
import errno
import functools
import itertools
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lars.errors import LoopClosed
from lars.ratelog import RateLimitedLog
from lars.reactor.config import ReactorConfig
from lars.reactor.connection import Counters
from lars.reactor.loop import LoopThread
from lars.reactor.router import Router
from lars.reactor.worker import ConnHook, Worker, WorkerHooks
from lars.threads import ThreadHealth

__all__ = ["ServerStats", "TcpServer"]

log = logging.getLogger(__name__)

ACCEPT_BATCH = 64
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass(frozen=True, slots=True)
class ServerStats:
    connections: int
    accepted: int
    refused: int
    closed: int
    frames_in: int
    frame_errors: int
    frame_timeouts: int
    backpressure_pauses: int
    backpressure_drops: int
    unknown_msgids: int
    bad_bodies: int
    handler_errors: int


class TcpServer:
    """Framed TCP server. Build, `start()`, and `stop()` from the thread that built it.

    `master` may be an existing LoopThread to share (it is then not stopped by us).
    `on_connect(conn)` / `on_close(conn)` run on the connection's worker loop.
    """

    def __init__(
        self,
        config: ReactorConfig,
        router: Router,
        *,
        name: str = "tcp",
        on_connect: ConnHook | None = None,
        on_close: ConnHook | None = None,
        master: LoopThread | None = None,
        health: ThreadHealth | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.name = name
        self.on_connect = on_connect
        self.on_close = on_close
        self._own_master = master is None
        uv = config.use_uvloop
        self._master = master or LoopThread(f"{name}-master", use_uvloop=uv, health=health)
        self._threads: list[LoopThread] = [  # a dead loop thread is reported to `health`
            LoopThread(f"{name}-worker{i}", use_uvloop=uv, health=health)
            for i in range(config.threads)
        ]
        self.workers: list[Worker] = []
        self._ids = itertools.count(1)
        self._rr = itertools.count()
        self._lock = threading.Lock()
        self._active = 0
        self._refused = 0
        self._lsock: socket.socket | None = None
        self._accept_paused = False
        self._log_accept = RateLimitedLog(log)
        self._log_refused = RateLimitedLog(log)
        self.address: tuple[str, int] = (config.ip, config.port)

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def master(self) -> LoopThread:
        return self._master

    def start(self) -> None:
        """Bind, start the loops, and begin accepting; returns once listening."""
        if self.workers:  # loop threads cannot be restarted: build a new server
            raise RuntimeError(f"{self.name} was already started")
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.config.reuse_port:
                lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            lsock.bind((self.config.ip, self.config.port))
            lsock.listen(self.config.backlog)
            lsock.setblocking(False)
        except OSError:
            lsock.close()
            self.stop()  # releases the loops' wake-up fds
            raise
        self._lsock = lsock
        self.address = lsock.getsockname()[:2]
        if self._own_master:
            self._master.start()
        for thread in self._threads:
            thread.start()
        loops = self._threads or [self._master]
        hooks = WorkerHooks(
            config=self.config,
            router=self.router,
            next_id=self._ids.__next__,
            release_slot=self._release_slot,
            on_connect=self.on_connect,
            on_close=self.on_close,
        )
        self.workers = [Worker(hooks, i, t) for i, t in enumerate(loops)]
        # however a loop ends (a death included, lars.threads), its sockets are closed on it
        self._master.at_exit(self._stop_accepting)
        for worker in self.workers:
            worker.thread.at_exit(functools.partial(_abort_all, worker))
        for worker in self.workers:
            worker.thread.call(worker.start_sweeper).result()
        self._master.call(self._master.loop.add_reader, lsock.fileno(), self._on_accept).result()
        log.info(
            "%s listening on %s:%d with %d worker loop(s)",
            self.name,
            *self.address,
            len(self._threads),
        )

    # master loop

    def _on_accept(self) -> None:
        lsock = self._lsock
        if lsock is None:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    self._log_accept("%s: accept failed (%s); pausing accepts", self.name, exc)
                    self._pause_accepting(0.1)
                    return
                continue  # ECONNABORTED and friends: that client is gone, go on
            with self._lock:
                if self._active >= self.config.max_conns:
                    self._refused += 1
                    refused = True
                else:
                    self._active += 1
                    refused = False
            if refused:
                sock.close()
                self._log_refused(
                    "%s: max_conns %d reached; refusing", self.name, self.config.max_conns
                )
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            worker = self.workers[next(self._rr) % len(self.workers)]
            if worker.thread is self._master:
                worker.adopt(sock)
            else:
                try:
                    worker.post(worker.adopt, sock)
                except Exception:
                    sock.close()
                    self._release_slot()

    def _pause_accepting(self, delay: float) -> None:
        lsock = self._lsock
        if lsock is None or self._accept_paused:
            return
        loop = self._master.loop
        loop.remove_reader(lsock.fileno())
        self._accept_paused = True

        def resume() -> None:
            self._accept_paused = False
            if self._lsock is not None:
                loop.add_reader(self._lsock.fileno(), self._on_accept)

        loop.call_later(delay, resume)

    def _release_slot(self) -> None:
        with self._lock:
            self._active -= 1

    def _stop_accepting(self) -> None:
        lsock, self._lsock = self._lsock, None
        if lsock is not None:
            self._master.loop.remove_reader(lsock.fileno())
            lsock.close()

    # any thread

    def broadcast(self, fn: Callable[[Worker], Any]) -> list[concurrent.futures.Future[Any]]:
        """Run fn(worker) on every worker's own loop; futures carry the results."""
        return [w.thread.call(fn, w) for w in self.workers]

    def stats(self) -> ServerStats:
        totals = Counters()
        for worker in self.workers:
            for key, value in worker.counters.as_dict().items():
                setattr(totals, key, getattr(totals, key) + value)
        with self._lock:
            active, refused = self._active, self._refused
        return ServerStats(
            connections=active,
            accepted=totals.accepted,
            refused=refused,
            closed=totals.closed,
            frames_in=totals.frames_in,
            frame_errors=totals.frame_errors,
            frame_timeouts=totals.frame_timeouts,
            backpressure_pauses=totals.backpressure_pauses,
            backpressure_drops=totals.backpressure_drops,
            unknown_msgids=self.router.unknown_msgids,
            bad_bodies=self.router.bad_bodies,
            handler_errors=self.router.handler_errors,
        )

    def stop(self) -> None:
        """Stop accepting, flush and close every connection, stop the loops we own."""
        if not self._master.running:
            for thread in self._threads:  # never started, or already stopped
                thread.stop()
            if self._own_master:
                self._master.stop()
            return
        try:
            self._master.call(self._stop_accepting).result()
        except Exception:  # pragma: no cover - master already stopping
            log.debug("stop_accepting failed", exc_info=True)
        futures = []
        for w in self.workers:
            drain = w.drain(self.config.drain_timeout)
            try:
                futures.append(w.thread.submit(drain))
            except (LoopClosed, RuntimeError):  # its loop died (lars.threads): nothing to drain
                drain.close()
        for future in futures:
            try:
                future.result(self.config.drain_timeout + 5)
            except Exception:  # pragma: no cover
                log.warning("%s: a worker did not drain cleanly", self.name, exc_info=True)
        for thread in self._threads:
            thread.stop()
        if self._own_master:
            self._master.stop()
        log.info("%s stopped", self.name)


def _abort_all(worker: Worker) -> None:
    """A worker loop's exit hook: abort the connections left on it."""
    for conn in list(worker.connections.values()):
        conn.abort()
