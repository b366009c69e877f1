"""Login state without I/O: a hashed password, sessions with CSRF tokens, a login throttle.

Time comes in as `now`; the app passes its clock. The bootstrap admin's password is kept
only as a salted scrypt digest; sessions live in memory (a restart logs everyone out).
Which account a session belongs to is kept here; what it may do (its role) is read from
lars.accounts on every request.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field

from lars.accounts.passwords import PasswordHash as _PasswordHash
from lars.console.config import check_password

__all__ = ["LoginThrottle", "PasswordHash", "Session", "SessionStore"]


class PasswordHash(_PasswordHash):
    """The bootstrap admin's password hash (lars.accounts.passwords, scrypt); a missing or
    too short configured password is a ConfigError naming where to set it."""

    __slots__ = ()

    def __init__(self, password: str) -> None:
        check_password(password)
        super().__init__(password)


@dataclass(slots=True)
class Session:
    """One logged-in browser or API client: `user` is the account's name, `kind` is
    "bootstrap" (the configured admin) or "user" (an account in the database, whose role
    is read again on every request)."""

    token: str
    csrf: str
    expires: float
    user: str = ""
    kind: str = "bootstrap"
    flash: list[str] = field(default_factory=list)

    def csrf_ok(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate, self.csrf)


class SessionStore:
    """Sessions by cookie token; each use extends the idle timeout `ttl`.

    Handlers run on a thread pool, so a lock guards the dict (not a hot path).
    """

    def __init__(self, ttl: float, max_sessions: int = 1000) -> None:
        self._ttl = ttl
        self._max = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, now: float, user: str = "", kind: str = "bootstrap") -> Session:
        session = Session(
            token=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires=now + self._ttl,
            user=user,
            kind=kind,
        )
        with self._lock:
            self._prune(now)
            if len(self._sessions) >= self._max:
                oldest = min(self._sessions.values(), key=lambda s: s.expires)
                del self._sessions[oldest.token]
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None, now: float) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires <= now:
                del self._sessions[token]
                return None
            session.expires = now + self._ttl
            return session

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _prune(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[token]


class LoginThrottle:
    """At most `limit` failed logins per client address within `window` seconds."""

    def __init__(self, limit: int = 5, window: float = 60.0, max_clients: int = 10_000) -> None:
        self._limit = limit
        self._window = window
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str, now: float) -> bool:
        with self._lock:
            recent = self._recent(client, now)
            return recent is not None and len(recent) >= self._limit

    def retry_after(self, client: str, now: float) -> float | None:
        """Seconds until `client` may try again, or None when it is not blocked."""
        with self._lock:
            recent = self._recent(client, now)
            if recent is None or len(recent) < self._limit:
                return None
            # Unblocked once all but limit - 1 of the failures have left the window.
            return recent[len(recent) - self._limit] + self._window - now

    def failed(self, client: str, now: float) -> None:
        with self._lock:
            if client not in self._failures and len(self._failures) >= self._max_clients:
                self._failures.clear()  # a flood of addresses: start over rather than grow
            self._failures.setdefault(client, deque()).append(now)
            self._recent(client, now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> deque[float] | None:
        recent = self._failures.get(client)
        if recent is None:
            return None
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        if not recent:
            del self._failures[client]
            return None
        return recent
