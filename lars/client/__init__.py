"""The business API: ask the local agent for a host, call it, report how it went.

`LarsClient` blocks (plain sockets, safe to share between threads); `AsyncLarsClient`
runs on one asyncio loop with many calls in flight. Both share the sans-I/O core in
`lars.client.core` and return the result types of `lars.client.result`.
"""

from lars.client.aio import AsyncLarsClient
from lars.client.core import DEFAULT_BASE_PORT, DEFAULT_TIMEOUT, ClientConfig, ClientCore
from lars.client.result import Host, HostResult, NoHostError, RouteResult
from lars.client.sync import ClientStats, LarsClient
from lars.protocol import RetCode

__all__ = [
    "DEFAULT_BASE_PORT",
    "DEFAULT_TIMEOUT",
    "AsyncLarsClient",
    "ClientConfig",
    "ClientCore",
    "ClientStats",
    "Host",
    "HostResult",
    "LarsClient",
    "NoHostError",
    "RetCode",
    "RouteResult",
]
