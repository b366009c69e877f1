"""ConsoleServer: uvicorn serving the console app on a thread its owner starts and stops.

The listening socket is bound in start(), so port 0 gives an ephemeral port that is known
(`.port`) before the first request. `serve()` is the same server as a coroutine for a
caller that owns its own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn
from starlette.types import ASGIApp

from lars.errors import LarsError, NetworkError
from lars.threads import ThreadHealth

__all__ = ["ConsoleServer", "listen_socket"]

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class ConsoleServer:
    def __init__(self, app: ASGIApp, ip: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._ip = ip
        self._requested_port = port
        self._sock: socket.socket | None = None
        self._port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.threads = ThreadHealth()  # the serving thread ending on its own: dead, reported

    @property
    def port(self) -> int:
        if not self._port:
            raise LarsError("console server is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._ip}:{self.port}"

    def _bind(self) -> socket.socket:
        sock = listen_socket(self._ip, self._requested_port)
        self._sock = sock
        self._port = sock.getsockname()[1]
        return sock

    def _make_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self._app,
            loop="asyncio",
            lifespan="off",
            log_level="warning",
            # uvicorn's own logging config adds handlers of its own format: without it its
            # loggers reach the root handler, in the process's --log-format
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        self._server = server
        return server

    def start(self) -> None:
        """Listen, then serve on a new thread; returns once requests are answered."""
        if self._thread is not None:
            raise LarsError("console server already started")
        sock = self._bind()
        server = self._make_server()
        target = self.threads.target(
            "lars-console",
            lambda: server.run(sockets=[sock]),
            stopping=lambda: bool(server.should_exit),
            restart=False,
        )
        self._thread = threading.Thread(target=target, name="lars-console", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(START_TIMEOUT / 0.02)):
            if server.started or not self._thread.is_alive():
                break
            deadline.wait(0.02)
        if not server.started:
            self.stop()
            raise LarsError("console server did not start")
        log.info("console listening on %s", self.url)

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            if self._thread.is_alive():
                log.warning("console thread did not stop within %.0f s", STOP_TIMEOUT)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._server = None

    async def serve(self) -> None:
        """Serve on the running loop until cancelled (for callers that own a loop)."""
        sock = self._bind()
        server = self._make_server()
        try:
            await server.serve(sockets=[sock])
        except asyncio.CancelledError:
            server.should_exit = True
            raise
        finally:
            sock.close()


def listen_socket(ip: str, port: int) -> socket.socket:
    """The console's listening socket, non-blocking, with a deep backlog and TCP_NODELAY.

    Accepted sockets inherit TCP_NODELAY: without it a response written in two parts
    (head, then body) waited for the client's delayed ACK, about 40 ms per request on a
    kept-alive connection. NetworkError (a failure, exit 1) when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((ip, port))
    except OSError as exc:
        sock.close()
        raise NetworkError(f"cannot listen on {ip}:{port}: {exc.strerror}") from exc
    sock.listen(2048)  # a burst of probes and pages queues instead of losing SYNs
    sock.setblocking(False)
    return sock
