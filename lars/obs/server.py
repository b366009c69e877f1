"""MetricsServer: one daemon's metrics, health, readiness and status over HTTP.

One listener per daemon process, owned through start()/stop(): an asyncio loop on its
own thread accepts and reads every connection concurrently, so no client can hold it
(issue 19: the single-threaded HTTPServer it replaces let one client sending a byte every
3 s keep /healthz unanswered, and 2,000 concurrent scrapes overran its backlog of 5).

  GET /metrics   Prometheus text exposition of the daemon's own CollectorRegistry
  GET /healthz   200 {"status": "ok"} while the process answers
  GET /readyz    200 or 503 with {"ready": ..., "reasons": [...]}
  GET /status    a JSON summary for `lars status`
  GET <extra>    handlers the daemon adds (the agent's /debug/module)

Bounds (ListenerLimits; README "Metrics and health"): the request head must arrive
within 2 s and each read within 2 s, a response must be taken within 10 s, at most 4,096
connections are open (at most half the open-file limit; more wait in the kernel's queue,
whose backlog is set to 2,048), a head is at most 16 KiB.

/healthz is answered on the loop itself. Every other path runs on one worker thread the
server owns, one call at a time as before (collectors and status functions need not be
thread-safe against each other), and concurrent requests for the same path and query
share one call: 2,000 simultaneous scrapes cost a few collections, not 2,000. A handler
slower than 10 s answers 503 and the worker keeps going.

Every error goes through `logging` (rate-limited): nothing is written to stderr raw.
Daemon-side only: imports prometheus_client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import queue
import resource
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from lars.errors import NetworkError
from lars.obs.httpwire import (
    MAX_HEAD,
    HttpError,
    Request,
    head_end,
    parse_request,
    render_response,
)
from lars.obs.ready import Readiness
from lars.obs.registry import ReadinessCollector
from lars.ratelog import RateLimitedLog
from lars.reactor.loop import new_event_loop
from lars.threads import ThreadHealth

__all__ = ["Handler", "HandlerError", "ListenerLimits", "MetricsServer"]

log = logging.getLogger(__name__)

# A handler gets the query parameters and returns (HTTP status, JSON-able body).
Handler = Callable[[Mapping[str, str]], tuple[int, Any]]
Answer = tuple[int, str, bytes]

_JSON = "application/json"
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerLimits:
    """What one client, or many, may cost the listener."""

    header_deadline: float = 2.0  # the whole request head, from accept
    read_deadline: float = 2.0  # each read of it
    write_deadline: float = 10.0  # the whole response, to a client that reads slowly
    handler_deadline: float = 10.0  # a collector or status call; then 503
    # Open at once; the rest wait in the listen queue, where a /healthz probe waits behind
    # them (benchmarks/listener.py: with 2,000 scrapes in flight a cap of 512 made probes
    # wait up to 2 s, 4,096 kept them under 0.5 s). Lowered at start to half the process's
    # file descriptor limit (the systemd units raise it to 65,536).
    max_connections: int = 4096
    backlog: int = 2048  # listen(2) backlog (the kernel caps it at net.core.somaxconn)
    max_head: int = MAX_HEAD


class HandlerError(Exception):
    """Raised by a handler for a client mistake: answered with `status` and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Worker:
    """The one thread that runs handlers, in order; owned and joined by MetricsServer."""

    def __init__(self, name: str, threads: ThreadHealth) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], Answer], concurrent.futures.Future[Answer]] | None
        ] = queue.SimpleQueue()
        self._stopping = False
        target = threads.target(name, self._run, stopping=lambda: self._stopping, restart=True)
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Answer]) -> concurrent.futures.Future[Answer]:
        future: concurrent.futures.Future[Answer] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        return future

    def stop(self, timeout: float) -> None:
        self._stopping = True
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            try:
                if not future.set_running_or_notify_cancel():
                    continue  # its client gave up before its turn
                future.set_result(fn())
            except BaseException as exc:  # respond() catches; this is the last resort
                # Never leave the job's future pending: identical requests share it, and
                # they would all wait on it forever.
                if not future.done():  # a plain error: a BaseException must not reach the loop
                    failed = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
                    future.set_exception(failed)
                if not isinstance(exc, Exception):
                    raise  # the thread ends: ThreadHealth reports and restarts it


class MetricsServer:
    """Build, `start()` (binds; raises NetworkError naming the address), `stop()`."""

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        *,
        daemon: str,
        ready: Callable[[], Readiness],
        status: Callable[[], dict[str, Any]],
        handlers: Mapping[str, Handler] | None = None,
        limits: ListenerLimits | None = None,
        threads: ThreadHealth | None = None,
    ) -> None:
        self.daemon = daemon
        # The daemon's ThreadHealth: a listener or worker thread that dies is named in
        # /readyz and `lars status`, and stops the daemon loudly (its own when not given).
        self.threads = threads if threads is not None else ThreadHealth()
        self.limits = limits or ListenerLimits()
        self._address = address
        self._registry = registry
        self._ready = ready
        registry.register(ReadinessCollector(ready))
        self._routes: dict[str, Handler] = {
            "/healthz": lambda _q: (200, {"status": "ok", "daemon": daemon}),
            "/readyz": self._readyz,
            "/status": lambda _q: (200, status()),
            **(handlers or {}),
        }
        self._healthz = (json.dumps({"status": "ok", "daemon": daemon}) + "\n").encode()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._worker: _Worker | None = None
        self._cap = self.limits.max_connections
        self._log_error = RateLimitedLog(log, 60.0, level=logging.ERROR)
        self._log_client = RateLimitedLog(log, 60.0, level=logging.INFO)
        self.requests = 0  # answered by respond() (handlers and /metrics)
        self.errors = 0  # handlers that raised
        self.connections = 0  # accepted
        self.open_connections = 0
        self.dropped = 0  # closed without an answer: deadline passed, reset, closed early
        self.refused = 0  # answered 4xx/5xx for the request itself (bad head, method)

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1] if self._sock is not None else 0

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    def start(self) -> None:
        if self._sock is not None:
            raise RuntimeError("metrics server already started")
        host, port = self._address
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family, backlog=self.limits.backlog)
        except OSError as exc:
            raise NetworkError(
                f"{self.daemon}: metrics listener cannot bind {host}:{port}: "
                f"{exc.strerror or exc} (choose another with --metrics ADDR:PORT, "
                "or --metrics off)"
            ) from exc
        sock.setblocking(False)
        self._sock = sock
        self._cap = _fd_cap(self.limits.max_connections)
        if self._cap < self.limits.max_connections:
            log.info(
                "%s: metrics listener serves at most %d connections at once (half the "
                "open file limit; raise it, e.g. LimitNOFILE=65536, for %d)",
                self.daemon, self._cap, self.limits.max_connections,
            )  # fmt: skip
        self._worker = _Worker(f"{self.daemon}-metrics-work", self.threads)
        loop = new_event_loop()
        loop.set_exception_handler(self._loop_error)
        self._loop = loop
        started = threading.Event()
        name = f"{self.daemon}-metrics"
        target = self.threads.target(
            name,
            functools.partial(self._run, loop, sock, started),
            stopping=lambda: self._sock is None,
            restart=False,  # the loop is closed when it ends: dead, reported
        )
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()
        started.wait(_STOP_TIMEOUT)
        log.debug("%s: metrics and health on %s/metrics", self.daemon, self.url)

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            self._thread = None
        if self._worker is not None:
            self._worker.stop(_STOP_TIMEOUT)
            self._worker = None
        sock.close()
        self._loop = None

    # handlers (the worker thread; callable directly too)

    def _readyz(self, _query: Mapping[str, str]) -> tuple[int, Any]:
        verdict = self._ready()
        return (200 if verdict.ready else 503), {"daemon": self.daemon, **verdict.as_dict()}

    def respond(self, path: str, query: Mapping[str, str]) -> Answer:
        """(status, content type, body) for one GET."""
        self.requests += 1
        route = self._routes.get(path)
        try:
            if path == "/metrics":
                return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
            if route is None:
                code, body = 404, {"error": f"no such path {path}", "paths": self.paths()}
            else:
                code, body = route(query)
        except HandlerError as exc:
            code, body = exc.status, {"error": str(exc)}
        except Exception as exc:  # a bug or a timeout (a collector too): 500, keep serving
            self.errors += 1
            self._log_error("%s: %s failed", self.daemon, path, exc_info=True)
            code, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
        return code, _JSON, (json.dumps(body) + "\n").encode()

    def paths(self) -> list[str]:
        return ["/metrics", *self._routes]

    # the listener thread

    def _run(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, started: threading.Event
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(sock, started))
        finally:  # an error goes on to ThreadHealth, which logs and reports it
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, sock: socket.socket, started: threading.Event) -> None:
        self._stopping = asyncio.Event()
        started.set()
        shared: dict[tuple[str, tuple[tuple[str, str], ...]], asyncio.Future[Answer]] = {}
        tasks: set[asyncio.Task[None]] = set()
        accepting = asyncio.ensure_future(self._accept(sock, shared, tasks))
        await self._stopping.wait()
        accepting.cancel()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(accepting, *tasks, return_exceptions=True)

    async def _accept(
        self,
        sock: socket.socket,
        shared: dict[tuple[str, tuple[tuple[str, str], ...]], asyncio.Future[Answer]],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self._cap)
        while True:
            await slots.acquire()  # at the cap: leave the rest in the listen queue
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS: wait, do not spin
                slots.release()
                self._log_error("%s: metrics listener cannot accept: %s", self.daemon, exc)
                await asyncio.sleep(0.1)
                continue
            self.connections += 1
            self.open_connections += 1
            task = loop.create_task(self._connection(conn, shared))
            tasks.add(task)
            task.add_done_callback(lambda t: self._closed(t, tasks, slots))

    def _closed(
        self, task: asyncio.Task[None], tasks: set[asyncio.Task[None]], slots: asyncio.Semaphore
    ) -> None:
        tasks.discard(task)
        self.open_connections -= 1
        slots.release()

    async def _connection(
        self,
        conn: socket.socket,
        shared: dict[tuple[str, tuple[tuple[str, str], ...]], asyncio.Future[Answer]],
    ) -> None:
        loop = asyncio.get_running_loop()
        limits = self.limits
        try:
            conn.setblocking(False)
            try:
                head = await asyncio.wait_for(self._read_head(conn), limits.header_deadline)
                if head is None:
                    self.dropped += 1  # closed before a whole head
                    return
                request = parse_request(head)
            except HttpError as exc:
                self.refused += 1
                answer: Answer = exc.status, _JSON, _error_body(str(exc))
                head_only = False
            else:
                answer = await self._answer(request, shared)
                head_only = request.method == "HEAD"
            data = render_response(*answer, head_only=head_only)
            await asyncio.wait_for(loop.sock_sendall(conn, data), limits.write_deadline)
            if answer[0] >= 400:
                await self._linger(conn)
        except (TimeoutError, OSError) as exc:  # deadline, reset, broken pipe
            self.dropped += 1
            self._log_client(
                "%s: metrics client dropped: %s", self.daemon, type(exc).__name__ or exc
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log_error("%s: metrics connection failed", self.daemon, exc_info=True)
        finally:
            conn.close()

    async def _linger(self, conn: socket.socket) -> None:
        """After refusing a request the client may still be sending (a head too long):
        closing with unread input would reset the connection and lose the answer, so end
        our side and discard its input for a moment first."""
        loop = asyncio.get_running_loop()
        conn.shutdown(socket.SHUT_WR)
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(self.limits.read_deadline):
                for _ in range(64):
                    if not await loop.sock_recv(conn, 65536):
                        break

    async def _read_head(self, conn: socket.socket) -> bytes | None:
        loop = asyncio.get_running_loop()
        buffer = bytearray()
        while True:
            chunk = await asyncio.wait_for(loop.sock_recv(conn, 4096), self.limits.read_deadline)
            if not chunk:
                return None
            buffer += chunk
            end = head_end(buffer)
            if end >= 0:
                return bytes(buffer[:end])
            if len(buffer) > self.limits.max_head:
                raise HttpError(431, f"request head larger than {self.limits.max_head} bytes")

    async def _answer(
        self,
        request: Request,
        shared: dict[tuple[str, tuple[tuple[str, str], ...]], asyncio.Future[Answer]],
    ) -> Answer:
        if request.path == "/healthz":  # on the loop: a busy worker cannot delay it
            self.requests += 1
            return 200, _JSON, self._healthz
        key = (request.path, tuple(sorted(request.query.items())))
        future = shared.get(key)
        if future is None:
            worker = self._worker
            if worker is None:
                return 503, _JSON, _error_body("stopping")
            future = asyncio.wrap_future(
                worker.submit(lambda: self.respond(request.path, request.query))
            )
            shared[key] = future
            future.add_done_callback(
                lambda f: shared.pop(key, None) if shared.get(key) is f else None
            )
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.limits.handler_deadline)
        except TimeoutError:
            self._log_error("%s: %s took over %.0f s", self.daemon, request.path,
                            self.limits.handler_deadline)  # fmt: skip
            return 503, _JSON, _error_body(f"{request.path} took too long")
        except Exception as exc:  # the handler thread failed under this request
            self.errors += 1
            self._log_error("%s: %s failed: %r", self.daemon, request.path, exc)
            return 500, _JSON, _error_body(f"{request.path} failed")

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self._log_error(
            "%s: metrics listener: %s%s", self.daemon, context.get("message", "error"),
            f": {exc!r}" if exc is not None else "",
        )  # fmt: skip


def _fd_cap(wanted: int) -> int:
    """`wanted`, or half the soft RLIMIT_NOFILE (at least 16) when that is lower."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return min(wanted, max(16, soft // 2))


def _error_body(message: str) -> bytes:
    return (json.dumps({"error": message}) + "\n").encode()
