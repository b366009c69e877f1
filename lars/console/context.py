"""The objects one console app shares between its requests, and the cookie rules.

Who a request acts as (a Principal: name and role) is decided once per request by the
auth middleware in app.py and kept on `request.state.principal`; `service_of(request)`
gives the ConsoleService that records edits under that name in RouteAudit.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from lars.accounts import AccountStore, Principal, Role
from lars.console.auth import LoginThrottle, PasswordHash, Session, SessionStore
from lars.console.counters import ConsoleCounters
from lars.console.policy import Policy
from lars.console.service import ConsoleService
from lars.ratelog import RateLimitedLog

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "ConsoleContext",
    "client_of",
    "get_context",
    "principal_of",
    "service_of",
    "session_of",
]

COOKIE = "lars_session"
CSRF_HEADER = "x-csrf-token"

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class ConsoleContext:
    service: ConsoleService
    password: PasswordHash | None  # the bootstrap admin's; None: accounts only
    accounts: AccountStore
    bootstrap_user: str
    sessions: SessionStore
    throttle: LoginThrottle
    clock: Callable[[], float] = time.time
    refresh_interval: float = 5.0
    secure_cookie: bool = False
    session_ttl: float = 8 * 3600.0
    bad_login_log: RateLimitedLog = field(default_factory=lambda: RateLimitedLog(log))
    policy: Policy = field(default_factory=Policy)
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

    def login(self, password: str, client: str, user: str = "") -> Session | None:
        """A new session when `password` is right for `user` (empty: the bootstrap admin)
        and `client` is not throttled. Runs scrypt: call it off the event loop."""
        now = self.clock()
        if self.throttle.blocked(client, now):
            self.counters.logins_throttled += 1
            return None
        principal = self._check(user.strip(), password)
        if principal is None:
            self.counters.login_failures += 1
            self.throttle.failed(client, now)
            self.bad_login_log("failed console login from %s", client)
            return None
        self.throttle.succeeded(client)
        return self.sessions.create(now, principal.name, principal.kind)

    def _check(self, user: str, password: str) -> Principal | None:
        if not user or (user == self.bootstrap_user and self.password is not None):
            if self.password is None or not self.password.verify(password):
                return None
            return Principal(self.bootstrap_user, Role.ADMIN, "bootstrap")
        return self.accounts.login(user, password)

    def principal_of_session(self, session: Session) -> Principal | None:
        """The session's account as it is now: a deleted account's session ends."""
        if session.kind == "bootstrap":
            if self.password is None:
                return None
            return Principal(self.bootstrap_user, Role.ADMIN, "bootstrap")
        return self.accounts.user(session.user)

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
    """The session the auth middleware attached (pages always have one; an API request
    with a Bearer token has none: use principal_of)."""
    session: Session = request.state.session
    return session


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def principal_of(request: Request) -> Principal:
    """Who the request acts as (every non-public route has one: the middleware set it)."""
    principal: Principal = request.state.principal
    return principal


def service_of(request: Request) -> ConsoleService:
    """The console service recording this request's edits under its principal's name."""
    return get_context(request).service.by(principal_of(request).name)
