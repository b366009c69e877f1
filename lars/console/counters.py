"""The console's request and login counters, read by the metrics exporter.

Requests are counted by route template (`/api/modules/{modid}/{cmdid}`, never the
concrete path: the label set stays bounded) and HTTP status; an unmatched path counts as
route "other". The console serves a few requests a second at most, so a lock is fine.
"""

from __future__ import annotations

import threading

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ConsoleCounters", "CountRequests"]


class ConsoleCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self.login_failures = 0  # wrong passwords
        self.logins_throttled = 0  # attempts refused while an address is throttled

    def request(self, method: str, route: str, status: int) -> None:
        key = (method, route, status)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1

    def requests(self) -> dict[tuple[str, str, int], int]:
        with self._lock:
            return dict(self._requests)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")  # set by the router on the shared scope once it matched
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class CountRequests:
    """Outermost ASGI middleware: counts every answered request by route and status.

    Plain ASGI rather than an `@app.middleware("http")` function: it only watches the
    response start going by, so it changes nothing about how a request body is read or a
    disconnect is seen (a BaseHTTPMiddleware layer would)."""

    def __init__(self, app: ASGIApp, counters: ConsoleCounters) -> None:
        self.app = app
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if status:
                self.counters.request(str(scope.get("method", "")), _route_of(scope), status)
