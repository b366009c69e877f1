"""Agent counters: one frozen snapshot type and the periodic log line built from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lars.agent.shard import ShardStats

__all__ = ["AgentStats", "StatsLog"]

_SHARD_FIELDS = (
    "modules",
    "get_host",
    "reports",
    "get_route",
    "refused_modules",
    "misrouted",
    "route_requests",
    "expired_modules",
    "noexist_route_down",
)


@dataclass(frozen=True, slots=True)
class AgentStats:
    shards: tuple[ShardStats, ...]
    datagrams: int
    dropped_datagrams: int
    bad_bodies: int
    unknown_msgids: int
    handler_errors: int
    route_connected: bool
    route_responses: int
    route_held_modules: int  # modules served while a hold withholds their empty answers
    route_mass_empty: int  # mass empties held (reported only, with mass_empty_delay 0)
    route_holds_released: int  # holds ended by hosts for a held module
    route_holds_expired: int  # holds ended by mass_empty_delay (empty answers applied)
    route_connects: int  # successful (re)connections to a route service
    route_connect_failures: int
    route_silent_drops: int  # route service connections dropped for silence (a partition)
    reporter_connected: bool
    reporter_connects: int
    reporter_connect_failures: int
    reports_sent: int
    reports_pending: int
    reports_kept: int  # report requests held back while the reporter was down
    reports_dropped: int
    cache_writes: int
    cache_saved_at: float | None  # unix time of the route cache file's content
    send_errors: int  # UDP replies the kernel refused
    # never backwards (issue 22, lars.agent.freshness): route answers older than the
    # module's table, not applied at once; older tables applied after 30 s (rollbacks)
    route_older_answers: int = 0
    route_rollbacks: int = 0


class StatsLog:
    """Logs one INFO line of counters, only when they changed since the last line."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._last: tuple[int, ...] = ()

    def __call__(self, s: AgentStats) -> None:
        sums = [sum(getattr(sh, f) for sh in s.shards) for f in _SHARD_FIELDS]
        line = (*sums, s.dropped_datagrams, s.bad_bodies, s.reports_sent, s.reports_pending)
        if line == self._last:
            return
        self._last = line
        self._log.info(
            "agent: modules %d, get_host %d, report %d, get_route %d, refused modules %d, "
            "misrouted %d, route asks %d, expired %d, NOEXIST while route service down %d; "
            "dropped datagrams %d, bad bodies %d; "
            "reports sent %d, pending %d; route service %s, reporter %s",
            *line,
            "up" if s.route_connected else "DOWN",
            "up" if s.reporter_connected else "DOWN",
        )
