"""Readiness rules of each daemon, sans-I/O: plain values in, a verdict with reasons out.

`GET /readyz` answers 200 with the verdict when ready and 503 with the reasons when not;
load balancers and orchestrators take a not-ready daemon out of rotation but leave it
running (`/healthz` only says the process answers). Time comes in as `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["POLL_INTERVALS", "Readiness", "agent_ready", "dns_ready", "reporter_ready"]

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


def agent_ready(*, route_connected: bool, known_routes: int) -> Readiness:
    """Ready with a live route-service connection, or routes (replies or the cache file)
    to serve from while it is away."""
    if route_connected or known_routes > 0:
        return Readiness(True)
    return _verdict(["no route service connection and no cached routes to serve from"])


def dns_ready(
    *, loaded: bool, last_success: float | None, poll_interval: float, now: float
) -> Readiness:
    """Ready once a table is loaded and the last successful poll is recent enough."""
    if not loaded:
        return _verdict(["route table not loaded yet"])
    limit = POLL_INTERVALS * poll_interval
    if last_success is None:
        return _verdict(["no successful version poll yet"])
    age = now - last_success
    if age > limit:
        why = f"last successful version poll {age:.1f}s ago (limit {limit:g}s)"
        return _verdict([why + ": is the database reachable?"])
    return Readiness(True)


def reporter_ready(*, db_up: bool, queue_depth: Sequence[int], max_pending: int) -> Readiness:
    """Ready while the database takes writes, or while every writer still has room to
    buffer (a writer at `max_pending` drops new keys)."""
    if db_up:
        return Readiness(True)
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
