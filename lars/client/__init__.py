"""The business API: ask the local agent for a host, call it, report how it went.

`LarsClient` blocks (plain sockets, safe to share between threads); `AsyncLarsClient`
runs on one asyncio loop with many calls in flight. Both share the sans-I/O core in
`lars.client.core` and return the result types of `lars.client.result`.
"""

from lars.client.aio import AsyncLarsClient
from lars.client.config import DEFAULT_BASE_PORT, DEFAULT_TIMEOUT, ClientConfig
from lars.client.core import ClientCore
from lars.client.registration import (
    AsyncRegistration,
    RegisterResult,
    RegisterStatus,
    Registration,
    RegistrationRefused,
)
from lars.client.result import ClientStats, Host, HostResult, NoHostError, RouteResult
from lars.client.sync import LarsClient
from lars.protocol import RetCode
from lars.protocol.checks import Check, CheckKind

__all__ = [
    "DEFAULT_BASE_PORT",
    "DEFAULT_TIMEOUT",
    "AsyncLarsClient",
    "AsyncRegistration",
    "Check",
    "CheckKind",
    "ClientConfig",
    "ClientCore",
    "ClientStats",
    "Host",
    "HostResult",
    "LarsClient",
    "NoHostError",
    "RegisterResult",
    "RegisterStatus",
    "Registration",
    "RegistrationRefused",
    "RetCode",
    "RouteResult",
]
