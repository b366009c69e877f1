"""Host health from ServerCallStatus rows, without I/O: `now` and the rows come in.

Each reporting agent (caller) keeps one row per host with its latest counters. A host's
health sums them: successes, errors, error rate, overloaded if any caller says so, the age
of its newest report, stale when that age exceeds `stale_after`. A stale host reads as
stale whatever its last report said: an "overloaded" flag 15 minutes old tells nothing
about the host now (the agents that reported it may be gone).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lars.protocol.ipv4 import uint_to_dotted

__all__ = [
    "HostHealth",
    "HostState",
    "ModuleHealth",
    "StatusRow",
    "hosts_health",
    "summarize",
]


class HostState(enum.StrEnum):
    """Worst first (a module shows its worst host's state). A host is STALE when its
    newest report is too old, else OVERLOAD if a caller says so, else OK; NODATA without
    reports."""

    OVERLOAD = "overload"
    STALE = "stale"
    NODATA = "nodata"
    OK = "ok"


_RANK = {state: rank for rank, state in enumerate(HostState)}


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One ServerCallStatus row; ip and caller are unsigned ints as stored."""

    modid: int
    cmdid: int
    ip: int
    port: int
    caller: int
    succ: int
    err: int
    ts: int
    overload: bool


@dataclass(frozen=True, slots=True)
class HostHealth:
    ip: str
    port: int
    in_route: bool
    succ: int
    err: int
    error_rate: float | None
    overload: bool
    callers: tuple[str, ...]
    last_report: int | None
    age: float | None
    stale: bool
    state: HostState


@dataclass(frozen=True, slots=True)
class ModuleHealth:
    hosts: int
    ok: int
    overloaded: int
    stale: int
    nodata: int
    state: HostState


def hosts_health(
    route_hosts: Iterable[tuple[str, int]],
    rows: Iterable[StatusRow],
    *,
    now: float,
    stale_after: float,
) -> list[HostHealth]:
    """Health of every routed host, then of hosts that only appear in reports, by address."""
    by_host: dict[tuple[str, int], list[StatusRow]] = {}
    for row in rows:
        by_host.setdefault((uint_to_dotted(row.ip), row.port), []).append(row)
    routed = set(route_hosts)
    result = [
        _one(ip, port, (ip, port) in routed, by_host.get((ip, port), ()), now, stale_after)
        for ip, port in sorted(routed | by_host.keys(), key=_address_key)
    ]
    return result


def _address_key(host: tuple[str, int]) -> tuple[tuple[int, ...], int]:
    return tuple(int(p) for p in host[0].split(".")), host[1]


def _one(
    ip: str,
    port: int,
    in_route: bool,
    rows: Sequence[StatusRow],
    now: float,
    stale_after: float,
) -> HostHealth:
    if not rows:
        return HostHealth(
            ip, port, in_route, 0, 0, None, False, (), None, None, False, HostState.NODATA
        )
    succ = sum(r.succ for r in rows)
    err = sum(r.err for r in rows)
    last = max(r.ts for r in rows)
    age = max(0.0, now - last)
    overload = any(r.overload for r in rows)
    stale = age > stale_after
    if stale:
        state = HostState.STALE
    elif overload:
        state = HostState.OVERLOAD
    else:
        state = HostState.OK
    callers = tuple(
        sorted(
            {uint_to_dotted(r.caller) for r in rows},
            key=lambda c: tuple(int(p) for p in c.split(".")),
        )
    )
    rate = err / (succ + err) if succ + err else None
    return HostHealth(
        ip, port, in_route, succ, err, rate, overload, callers, last, age, stale, state
    )


def summarize(hosts: Sequence[HostHealth]) -> ModuleHealth:
    """Counts per state over the routed hosts; the module's state is its worst host's."""
    routed = [h for h in hosts if h.in_route]
    counts = {state: 0 for state in HostState}
    for host in routed:
        counts[host.state] += 1
    worst = min((h.state for h in routed), key=_RANK.__getitem__, default=HostState.NODATA)
    return ModuleHealth(
        hosts=len(routed),
        ok=counts[HostState.OK],
        overloaded=counts[HostState.OVERLOAD],
        stale=counts[HostState.STALE],
        nodata=counts[HostState.NODATA],
        state=worst,
    )
