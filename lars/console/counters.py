"""The console's request and login counters, read by the metrics exporter.

Requests are counted by route template (`/api/modules/{modid}/{cmdid}`, never the
concrete path: the label set stays bounded) and HTTP status; an unmatched path counts as
route "other". The console serves a few requests a second at most, so a lock is fine.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["ConsoleCounters", "count_requests"]


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


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


def count_requests(
    counters: ConsoleCounters,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """An outermost HTTP middleware that counts every answered request."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        counters.request(request.method, _route_of(request), response.status_code)
        return response

    return middleware
