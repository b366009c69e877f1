"""Host health from ServerCallStatus rows, without I/O: `now` and the rows come in.

Each reporting agent (caller) keeps one row per host with its latest counters. A host's
health sums them: successes, errors, error rate, overloaded if any caller says so, the age
of its newest report, stale when that age exceeds `stale_after`. A stale host reads as
stale whatever its last report said: an "overloaded" flag 15 minutes old tells nothing
about the host now (the agents that reported it may be gone).

A drained host (RouteHostMeta.enabled = false) is shown as DRAINED, with who drained it
and when, and left out of the module's worst state. Agents that got the push stop
calling it, so reports of calls made after the drain (plus DRAIN_GRACE for reports in
flight) come from agents with stale routes, typically original Lars agents that missed
the push: their callers are listed in `calls_while_drained`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from lars.protocol.ipv4 import uint_to_dotted

__all__ = [
    "DRAIN_GRACE",
    "HostHealth",
    "HostSettings",
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
    DRAINED = "drained"  # left out of the route by an operator (not served)


_RANK = {state: rank for rank, state in enumerate(HostState)}
DRAIN_GRACE = 5.0  # seconds after a drain in which reports may still be in flight


class HostSettings(Protocol):
    """A host's RouteHostMeta settings (lars.routes.admin.RouteEntry has them)."""

    @property
    def weight(self) -> int: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def note(self) -> str: ...
    @property
    def updated_at(self) -> int: ...
    @property
    def updated_by(self) -> str: ...


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
    # RouteHostMeta (defaults: no settings)
    weight: int = 1
    enabled: bool = True
    note: str = ""
    changed_by: str = ""  # who last drained, undrained or weighted it
    changed_at: int | None = None  # when (unix seconds)
    calls_while_drained: tuple[str, ...] = ()  # callers reporting calls after the drain
    # Registration (issue 20): "static" (RouteData) or "registered" (an agent registered
    # it), the owning agent, its check kind and state (passing/failing) since when
    source: str = "static"
    agent: str = ""
    check: str = ""
    check_state: str = ""
    check_since: int = 0


@dataclass(frozen=True, slots=True)
class ModuleHealth:
    hosts: int
    ok: int
    overloaded: int
    stale: int
    nodata: int
    state: HostState
    drained: int = 0


def hosts_health(
    route_hosts: Iterable[tuple[str, int]],
    rows: Iterable[StatusRow],
    *,
    now: float,
    stale_after: float,
    settings: Mapping[tuple[str, int], HostSettings] | None = None,
) -> list[HostHealth]:
    """Health of every routed host, then of hosts that only appear in reports, by address.
    `settings` are the routed hosts' RouteHostMeta settings (drain, weight, note)."""
    by_host: dict[tuple[str, int], list[StatusRow]] = {}
    for row in rows:
        by_host.setdefault((uint_to_dotted(row.ip), row.port), []).append(row)
    routed = set(route_hosts)
    settings = settings or {}
    result = []
    for ip, port in sorted(routed | by_host.keys(), key=_address_key):
        mine = by_host.get((ip, port), ())
        host = _one(ip, port, (ip, port) in routed, mine, now, stale_after)
        meta = settings.get((ip, port))
        result.append(host if meta is None else _with_settings(host, meta, mine))
    return result


def _with_settings(host: HostHealth, meta: HostSettings, rows: Sequence[StatusRow]) -> HostHealth:
    changed_at = meta.updated_at or None
    calls: tuple[str, ...] = ()
    state = host.state
    if not meta.enabled:
        state = HostState.DRAINED
        since = (meta.updated_at or 0) + DRAIN_GRACE
        calls = _sorted_ips({r.caller for r in rows if r.ts > since and r.succ + r.err > 0})
    return replace(
        host,
        state=state,
        weight=meta.weight,
        enabled=meta.enabled,
        note=meta.note,
        changed_by=meta.updated_by,
        changed_at=changed_at,
        calls_while_drained=calls,
        # registration fields: lars.routes.routelist.RouteEntry has them; other
        # settings objects (no registrations) leave the static defaults
        source=str(getattr(meta, "source", "static")),
        agent=str(getattr(meta, "agent", "")),
        check=str(getattr(meta, "check", "")),
        check_state=str(getattr(meta, "state", "")),
        check_since=int(getattr(meta, "since", 0)),
    )


def _sorted_ips(ips: Iterable[int]) -> tuple[str, ...]:
    return tuple(uint_to_dotted(ip) for ip in sorted(ips))


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
    callers = _sorted_ips({r.caller for r in rows})
    rate = err / (succ + err) if succ + err else None
    return HostHealth(
        ip, port, in_route, succ, err, rate, overload, callers, last, age, stale, state
    )


def summarize(hosts: Sequence[HostHealth]) -> ModuleHealth:
    """Counts per state over the routed hosts; the module's state is its worst host's
    (drained hosts count only when every host is drained)."""
    routed = [h for h in hosts if h.in_route]
    counts = {state: 0 for state in HostState}
    for host in routed:
        counts[host.state] += 1
    served = [h.state for h in routed if h.state is not HostState.DRAINED]
    default = HostState.DRAINED if routed and not served else HostState.NODATA
    worst = min(served, key=_RANK.__getitem__, default=default)
    return ModuleHealth(
        hosts=len(routed),
        ok=counts[HostState.OK],
        overloaded=counts[HostState.OVERLOAD],
        stale=counts[HostState.STALE],
        nodata=counts[HostState.NODATA],
        state=worst,
        drained=counts[HostState.DRAINED],
    )
