"""MetricsServer: one daemon's metrics, health, readiness and status over HTTP.

One listener per daemon process, on its own thread owned through start()/stop() (not
prometheus_client.start_http_server, whose thread nobody owns). It serves requests one
at a time with a socket timeout: scrapes and probes are rare and small, and a single
thread cannot pile up work beside the daemon's hot loops.

  GET /metrics   Prometheus text exposition of the daemon's own CollectorRegistry
  GET /healthz   200 {"status": "ok"} while the process answers
  GET /readyz    200 or 503 with {"ready": ..., "reasons": [...]}
  GET /status    a JSON summary for `lars status`
  GET <extra>    handlers the daemon adds (the agent's /debug/module)

Daemon-side only: imports prometheus_client.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from lars.errors import NetworkError
from lars.obs.ready import Readiness
from lars.ratelog import RateLimitedLog

__all__ = ["Handler", "HandlerError", "MetricsServer"]

log = logging.getLogger(__name__)

# A handler gets the query parameters and returns (HTTP status, JSON-able body).
Handler = Callable[[Mapping[str, str]], tuple[int, Any]]

_REQUEST_TIMEOUT = 5.0  # a client that stops sending cannot hold the listener longer


class HandlerError(Exception):
    """Raised by a handler for a client mistake: answered with `status` and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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
    ) -> None:
        self.daemon = daemon
        self._address = address
        self._registry = registry
        self._ready = ready
        self._routes: dict[str, Handler] = {
            "/healthz": lambda _q: (200, {"status": "ok", "daemon": daemon}),
            "/readyz": self._readyz,
            "/status": lambda _q: (200, status()),
            **(handlers or {}),
        }
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log_error = RateLimitedLog(log, 60.0, level=logging.ERROR)
        self.requests = 0
        self.errors = 0

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd is not None else 0

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("metrics server already started")
        host, port = self._address
        try:
            httpd = HTTPServer((host, port), _make_handler(self))
        except OSError as exc:
            raise NetworkError(
                f"{self.daemon}: metrics listener cannot bind {host}:{port}: "
                f"{exc.strerror or exc} (choose another with --metrics ADDR:PORT, "
                "or --metrics off)"
            ) from exc
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
            name=f"{self.daemon}-metrics", daemon=True,
        )  # fmt: skip
        self._thread.start()
        log.debug("%s: metrics and health on %s/metrics", self.daemon, self.url)

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None

    # the listener thread

    def _readyz(self, _query: Mapping[str, str]) -> tuple[int, Any]:
        verdict = self._ready()
        return (200 if verdict.ready else 503), {"daemon": self.daemon, **verdict.as_dict()}

    def respond(self, path: str, query: Mapping[str, str]) -> tuple[int, str, bytes]:
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
        return code, "application/json", (json.dumps(body) + "\n").encode()

    def paths(self) -> list[str]:
        return ["/metrics", *self._routes]


def _make_handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        timeout = _REQUEST_TIMEOUT
        server_version = "lars-metrics"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            code, ctype, body = server.respond(parts.path, query)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape is noise; errors are logged by respond()

    return _Handler
