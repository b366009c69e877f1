"""Readiness rules of each daemon, sans-I/O: plain values in, a verdict with reasons out.

`GET /readyz` answers 200 with the verdict when ready and 503 with the reasons when not;
load balancers and orchestrators take a not-ready daemon out of rotation but leave it
running (`/healthz` only says the process answers). Time comes in as `now`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "POLL_INTERVALS",
    "Readiness",
    "agent_ready",
    "dns_ready",
    "missing_schema",
    "reporter_ready",
    "with_threads",
]

# A route service is ready while its last successful poll is at most this many poll
# intervals old: one slow poll is not an outage, three missed ones are.
POLL_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...] = ()  # why not ready (empty when ready)

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "reasons": list(self.reasons)}


def _verdict(reasons: list[str]) -> Readiness:
    return Readiness(not reasons, tuple(reasons))


def with_threads(
    readiness: Readiness, dead: Sequence[str], restarted: Sequence[str] = ()
) -> Readiness:
    """Not ready while one of the daemon's threads is dead (lars.threads names it and its
    error); those reasons come first. Restarted threads are named too when the daemon is
    not ready anyway: a poller failing and restarting explains stale polls better than
    the database does."""
    if dead:
        return Readiness(False, (*dead, *restarted, *readiness.reasons))
    if not readiness.ready and restarted:
        return Readiness(False, (*restarted, *readiness.reasons))
    return readiness


# The database answered, but a table or column the service reads is not there:
# MySQL/MariaDB 1146 and 1054, SQLite's wording.
_MISSING = (
    re.compile(r"Table '(?:[^'.]*\.)?([^']+)' doesn't exist"),
    re.compile(r"no such table: ([\w.]+)"),
)
_MISSING_COLUMN = (
    re.compile(r"Unknown column '([^']+)'"),
    re.compile(r"no such column: ([\w.]+)"),
)


def missing_schema(error: str) -> str | None:
    """'table RouteData is missing' when `error` says the database lacks a table (or
    'column X is missing'), else None: a reachable database with a broken schema."""
    for pattern in _MISSING:
        found = pattern.search(error)
        if found:
            return f"table {found.group(1)} is missing"
    for pattern in _MISSING_COLUMN:
        found = pattern.search(error)
        if found:
            return f"column {found.group(1)} is missing"
    return None


def agent_ready(*, route_connected: bool, known_routes: int) -> Readiness:
    """Ready with a live route-service connection, or routes (replies or the cache file)
    to serve from while it is away."""
    if route_connected or known_routes > 0:
        return Readiness(True)
    return _verdict(["no route service connection and no cached routes to serve from"])


def dns_ready(
    *,
    loaded: bool,
    last_success: float | None,
    poll_interval: float,
    now: float,
    last_error: str = "",
) -> Readiness:
    """Ready once a table is loaded and the last successful poll is recent enough. When
    the polls fail because a table or column is missing (`last_error`), the reason names
    it rather than blaming reachability: the database answers, the schema is broken."""
    schema = missing_schema(last_error) if last_error else None
    if not loaded:
        return _verdict([f"route table not loaded yet: {schema}" if schema else
                         "route table not loaded yet"])  # fmt: skip
    limit = POLL_INTERVALS * poll_interval
    if last_success is None:
        return _verdict(["no successful version poll yet"])
    age = now - last_success
    if age > limit:
        why = f"last successful version poll {age:.1f}s ago (limit {limit:g}s)"
        if schema:
            return _verdict([f"{schema} in the database: {why}; the last table is served"])
        return _verdict([why + ": is the database reachable?"])
    return Readiness(True)


def reporter_ready(
    *,
    db_up: bool,
    queue_depth: Sequence[int],
    max_pending: int,
    db_reached: bool = True,
    db_cause: str = "",
) -> Readiness:
    """Ready while the database takes writes, or while every writer still has room to
    buffer (a writer at `max_pending` drops new keys). Not ready while the database has
    not answered once since start (`db_reached` False): buffering is for outages of a
    database that works, not for one that may be misconfigured."""
    if db_up:
        return Readiness(True)
    if not db_reached:
        schema = missing_schema(db_cause)
        why = f"{schema} in the database" if schema else "database unavailable since start"
        return _verdict([f"{why}: {db_cause}" if db_cause else why])
    full = [i for i, depth in enumerate(queue_depth) if depth >= max_pending]
    if not full:
        return Readiness(True)
    return _verdict(
        [
            "database unreachable and writer(s) "
            + ",".join(map(str, full))
            + f" full ({max_pending} rows): new rows are dropped"
        ]
    )
