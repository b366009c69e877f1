"""The route service's exporter: metric families, readiness and status from
`DnsService.stats()` (plain values kept by the poller, the route server and the reactor).
Daemon-side only: imports prometheus_client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from lars.dns.service import DnsService, DnsStats
from lars.obs.families import (
    counter,
    gauge,
    histogram,
    labelled_counter,
    labelled_gauge,
    server_families,
)
from lars.obs.hist import Buckets
from lars.obs.listen import MetricsConfig
from lars.obs.ready import Readiness, dns_ready, with_threads
from lars.obs.registry import new_registry
from lars.obs.server import MetricsServer

__all__ = ["DnsCollector", "dns_metrics_server", "dns_readiness", "dns_status"]

P = "lars_dns"
_EMPTY = Buckets().snapshot()

Clock = Callable[[], float]


class DnsCollector(Collector):
    def __init__(self, dns: DnsService, *, clock: Clock = time.monotonic) -> None:
        self._dns = dns
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        s = self._dns.stats()
        p = s.poller
        yield gauge(f"{P}_route_version", "RouteVersion of the table served.", s.version)
        yield gauge(f"{P}_modules", "Modules in the table served.", s.modules)
        yield gauge(f"{P}_hosts", "Hosts in the table served.", s.hosts)
        yield gauge(f"{P}_table_loaded", "A table was loaded from the database (0/1).",
                    int(s.loaded))  # fmt: skip
        yield gauge(
            f"{P}_invalid_rows",
            "RouteData rows left out of the table served: not encodable on the wire.",
            s.invalid_rows,
        )
        yield gauge(
            f"{P}_drained_hosts",
            "Hosts left out of the table served because an operator drained them.",
            s.drained_hosts,
        )
        yield gauge(
            f"{P}_truncated_modules",
            "Modules served truncated: more hosts than one frame holds.",
            s.truncated_modules,
        )
        yield gauge(f"{P}_subscribers", "Connections subscribed to at least one module.",
                    s.subscriptions.connections)  # fmt: skip
        yield gauge(f"{P}_subscriptions", "(connection, module) subscriptions.",
                    s.subscriptions.subscriptions)  # fmt: skip
        yield counter(f"{P}_subscriptions_refused",
                      "Subscriptions refused past max_subscriptions per connection.",
                      s.subscriptions.refused)  # fmt: skip
        yield counter(f"{P}_reloads", "Route tables loaded from the database.", p.loads)
        yield histogram(f"{P}_reload_duration_seconds", "Duration of each table load.",
                        [({}, p.reload_seconds or _EMPTY)])  # fmt: skip
        yield counter(f"{P}_polls", "Version polls that reached the database.", p.polls)
        yield counter(f"{P}_poll_failures", "Polls and loads that failed.", p.poll_failures)
        if p.last_success is not None:
            yield gauge(f"{P}_last_poll_age_seconds",
                        "Seconds since the last successful version poll.",
                        max(0.0, self._clock() - p.last_success))  # fmt: skip
        yield gauge(f"{P}_database_up", "The last poll reached the database (0/1).",
                    int(s.loaded and not p.in_outage))  # fmt: skip
        yield counter(f"{P}_database_outages", "Database outages seen.", p.outages)
        yield counter(f"{P}_pushed_modules", "Modules pushed to subscribers after a reload.",
                      p.pushed_modules)  # fmt: skip
        yield counter(f"{P}_pushes", "Route frames pushed to subscribed connections.",
                      s.pushes_sent)  # fmt: skip
        yield histogram(f"{P}_push_duration_seconds",
                        "Duration of one push fan-out to every worker.",
                        [({}, s.push_seconds or _EMPTY)])  # fmt: skip
        yield from _extra(s)
        yield from _registrations(s)
        yield from server_families(P, s.server)


def _extra(s: DnsStats) -> Iterator[Metric]:
    """The drop guard's state: a held table is loaded but neither served nor pushed."""
    held = s.held
    yield gauge(f"{P}_table_held", "A loaded table is held back by the drop guard (0/1).",
                int(held is not None))  # fmt: skip
    if held is not None:
        yield gauge(f"{P}_held_version", "RouteVersion of the held table.", held.version)
        yield gauge(f"{P}_held_removed_hosts", "Hosts the held table would remove.",
                    held.removed_hosts)  # fmt: skip
        yield gauge(f"{P}_held_since_seconds", "Unix time the hold began.", held.since)
        yield gauge(f"{P}_held_hosts", "Hosts in the held table.", held.hosts_after)
    yield gauge(f"{P}_served_since_seconds",
                "Unix time the served table (its hosts) began being served.",
                s.served_since)  # fmt: skip
    yield gauge(f"{P}_guard_baseline_hosts",
                "Hosts of the guard window's baseline (each module's peak) at the last load.",
                s.baseline_hosts)  # fmt: skip
    yield counter(f"{P}_guard_state_saves", "Guard states saved (database and file).",
                  s.state_saves)  # fmt: skip
    yield gauge(f"{P}_database_writable",
                "This service may write its write database (0: read-only or not asked yet).",
                int(s.writes == "writable"))  # fmt: skip
    yield counter(f"{P}_change_clean_failures",
                  "Deletes of pushed RouteChange rows that failed.",
                  s.change_delete_failures)  # fmt: skip
    yield labelled_counter(f"{P}_guard_state_write_failures",
                           "Guard state saves that failed, by where.", "target",
                           {"database": s.state_db_failures,
                            "file": s.state_file_failures})  # fmt: skip
    yield counter(f"{P}_holds", "Tables held by the drop guard.", s.poller.holds)
    yield counter(f"{P}_sql_audit_rows", "Audit rows written for plain-SQL route edits.",
                  s.poller.sql_audit_rows)  # fmt: skip


def _registrations(s: DnsStats) -> Iterator[Metric]:
    """Self-registered instances (issue 20; lars.dns.registry)."""
    r = s.registry
    yield labelled_gauge(f"{P}_instances", "Registered instances at the last load, by check state.",
                         "state", {"passing": s.instances_passing,
                                   "failing": s.instances_failing})  # fmt: skip
    yield gauge(f"{P}_registered_hosts",
                "Hosts served only because an agent registered them (not in RouteData).",
                s.registered_hosts)  # fmt: skip
    if r is None:
        return
    yield gauge(f"{P}_registrations_accepted",
                "This route service accepts and advertises registrations (0/1).",
                int(r.accepting))  # fmt: skip
    yield counter(f"{P}_instance_syncs", "InstanceSync messages taken from agents.", r.syncs)
    yield counter(f"{P}_instance_syncs_refused",
                  "InstanceSync messages refused (not accepting, bad agent id, too many "
                  "agents waiting).", r.refused)  # fmt: skip
    yield counter(f"{P}_invalid_instances",
                  "Instances left out of a sync (ids, port or check text).",
                  r.invalid_instances)  # fmt: skip
    yield labelled_counter(f"{P}_registration_events",
                           "Registration changes written by this route service.", "event",
                           {"register": r.registered, "deregister": r.deregistered,
                            "expire": r.expired})  # fmt: skip
    yield counter(f"{P}_leases_expired",
                  "Instances expired by this route service: no lease renewal for [dns] lease.",
                  r.expired)  # fmt: skip
    yield counter(f"{P}_check_flaps", "Check state changes (passing <-> failing) written.",
                  r.flaps)  # fmt: skip
    yield counter(f"{P}_registration_writes", "Registration transactions committed.", r.writes)
    yield counter(f"{P}_registration_write_failures", "Registration transactions that failed.",
                  r.write_failures)  # fmt: skip
    yield gauge(f"{P}_registration_pending", "Agents whose sync waits for a write.", r.pending)


def _ready(s: DnsStats, poll_interval: float, now: float) -> Readiness:
    p = s.poller
    verdict = dns_ready(
        loaded=s.loaded,
        last_success=p.last_success,
        poll_interval=poll_interval,
        now=now,
        last_error=p.last_error if p.in_outage else "",
    )
    dead = [f.describe() for f in s.threads if f.dead]
    recent = [f.describe() for f in s.threads if not f.dead and f.recent]
    return with_threads(verdict, dead, recent)


def dns_readiness(dns: DnsService, *, clock: Clock = time.monotonic) -> Readiness:
    return _ready(dns.stats(), dns.config.poll_interval, clock())


def dns_status(
    dns: DnsService,
    *,
    clock: Clock = time.monotonic,
    process: tuple[int, int] | None = None,
) -> dict[str, Any]:
    s = dns.stats()
    p = s.poller
    now = clock()
    last = None if p.last_success is None else round(max(0.0, now - p.last_success), 3)
    return {
        "daemon": "dns",
        "ready": _ready(s, dns.config.poll_interval, now).as_dict(),
        "port": dns.port,
        "version": s.version,
        "modules": s.modules,
        "hosts": s.hosts,
        "invalid_rows": s.invalid_rows,
        "drained_hosts": s.drained_hosts,
        "connections": s.server.connections if s.server is not None else 0,
        "subscribers": s.subscriptions.connections,
        "reloads": p.loads,
        "pushes": s.pushes_sent,
        "database_up": s.loaded and not p.in_outage,
        "last_error": p.last_error if p.in_outage else "",
        "last_poll_age": last,
        "held": _held(s),
        "served_since": round(s.served_since, 3),
        "guard_baseline_hosts": s.baseline_hosts,
        "registrations": _registration_status(s),
        "writes": _write_status(s),
        "threads": [f.as_dict() for f in s.threads],
        # which child of `lars dns --processes N` answers (each describes only itself)
        "process": None if process is None else {"index": process[0], "of": process[1]},
    }


def _write_status(s: DnsStats) -> dict[str, Any]:
    """Where this service writes (issue 22): `state` writable, read-only (guarding alone
    with its snapshot file: no shared holds, no registrations, no audit) or unknown."""
    return {
        "state": s.writes,
        "write_db": s.write_db,
        "reason": s.writes_reason,
        "cleans_changes": s.cleans,
        "clean_failures": s.change_delete_failures,
    }


def _held(s: DnsStats) -> dict[str, Any] | None:
    h = s.held
    if h is None:
        return None
    return {
        "version": h.version,
        "reason": h.reason,
        "removed_hosts": h.removed_hosts,
        "modules": h.modules_after,
        "hosts": h.hosts_after,
        "since": round(h.since, 3),
        "served_version": h.served_version,
        "detail": h.detail,
    }


def dns_metrics_server(
    dns: DnsService, config: MetricsConfig, *, process: tuple[int, int] | None = None
) -> MetricsServer | None:
    """`process`: (index, count) of a child of `lars dns --processes N`, named in /status."""
    if config.listen is None:
        return None
    registry = new_registry("dns")
    registry.register(DnsCollector(dns))
    return MetricsServer(
        config.listen,
        registry,
        daemon="dns",
        ready=lambda: dns_readiness(dns),
        status=lambda: dns_status(dns, process=process),
        threads=dns.threads,  # a dead listener thread is the daemon's, like any other
    )


def _registration_status(s: DnsStats) -> dict[str, Any]:
    r = s.registry
    return {
        "accepted": bool(r is not None and r.accepting),
        "instances_passing": s.instances_passing,
        "instances_failing": s.instances_failing,
        "registered_hosts": s.registered_hosts,
        "leases_expired": r.expired if r is not None else 0,
        "pending": r.pending if r is not None else 0,
    }
