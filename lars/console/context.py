"""The objects one console app shares between its requests, and the cookie rules."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from lars.console.auth import LoginThrottle, PasswordHash, Session, SessionStore
from lars.console.counters import ConsoleCounters
from lars.console.service import ConsoleService
from lars.ratelog import RateLimitedLog

__all__ = ["COOKIE", "CSRF_HEADER", "ConsoleContext", "client_of", "get_context", "session_of"]

COOKIE = "lars_session"
CSRF_HEADER = "x-csrf-token"

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class ConsoleContext:
    service: ConsoleService
    password: PasswordHash
    sessions: SessionStore
    throttle: LoginThrottle
    clock: Callable[[], float] = time.time
    refresh_interval: float = 5.0
    secure_cookie: bool = False
    session_ttl: float = 8 * 3600.0
    bad_login_log: RateLimitedLog = field(default_factory=lambda: RateLimitedLog(log))
    counters: ConsoleCounters = field(default_factory=ConsoleCounters)

    def throttled_for(self, client: str) -> int | None:
        """Whole seconds (>= 1) until `client` may log in again, None when not throttled:
        the Retry-After of the 429 a throttled login gets (a lockout is not a wrong
        password)."""
        wait = self.throttle.retry_after(client, self.clock())
        if wait is None:
            return None
        self.counters.logins_throttled += 1
        return max(1, math.ceil(wait))

    def login(self, password: str, client: str) -> Session | None:
        """A new session when `password` is right and `client` is not throttled."""
        now = self.clock()
        if self.throttle.blocked(client, now):
            self.counters.logins_throttled += 1
            return None
        if not self.password.verify(password):
            self.counters.login_failures += 1
            self.throttle.failed(client, now)
            self.bad_login_log("failed console login from %s", client)
            return None
        self.throttle.succeeded(client)
        return self.sessions.create(now)

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.token,
            max_age=int(self.session_ttl),
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
            path="/",
        )


def get_context(request: Request) -> ConsoleContext:
    context: ConsoleContext = request.app.state.console
    return context


def session_of(request: Request) -> Session:
    """The session the auth middleware attached (every non-public route has one)."""
    session: Session = request.state.session
    return session


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
