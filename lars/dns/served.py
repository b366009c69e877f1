"""The served table: RouteData plus the passing registered instances (issue 20).

`build_table(snapshot)` is what the poller serves, guards and pushes. The union goes
through RouteTable.from_rows like any RouteData row, so a host that is both in RouteData
and registered is served once; drain and weight (RouteHostMeta, keyed by module and
host) and the per-module host limit apply to registered hosts exactly as to static ones;
original agents receive registered instances as ordinary hosts. A static host is served
whatever its registration's check says (RouteData is the operator's word); a failing
registered-only host is left out like a drained one, unless it is one of the snapshot's
`evidence` hosts (lars.dns.instances: failing checks never empty a module that callers
still reach). The guard judges this union, so expiries, deregistrations and failing
checks are host removals for it like any other.

Registrations are never held: while the guard holds a table (a mass expiry, say), the
registered hosts the held table ADDS are still served (`with_additions`: the served
table plus them), so a deploy that registers new instances during a hold is not blocked
by it. Static hosts a held table adds stay held with it: a mass `UPDATE RouteData SET
serverport = ...` must not start sending traffic to the new ports beside the old ones,
while a registered host has passed its agent's check.
"""

from __future__ import annotations

from lars.dns.instances import served_rows
from lars.dns.store import Snapshot
from lars.dns.table import Host, Key, RouteTable

__all__ = ["build_table", "with_additions"]


def build_table(snap: Snapshot) -> RouteTable:
    """The table to serve for a loaded snapshot."""
    if not snap.instances:
        return RouteTable.from_rows(
            snap.version, snap.routes, snap.meta, registrations=snap.registrations
        )
    rows = served_rows(snap.routes, snap.instances, snap.evidence)
    static = set(snap.routes)
    registered = frozenset(k for k in rows[len(snap.routes) :] if k not in static)
    passing = sum(1 for r in snap.instances if r.passing)
    return RouteTable.from_rows(
        snap.version,
        rows,
        snap.meta,
        registrations=snap.registrations,
        registered=registered,
        instance_states=(passing, len(snap.instances) - passing),
    )


def with_additions(served: RouteTable, new: RouteTable) -> RouteTable | None:
    """The served table plus every REGISTERED host `new` has that `served` lacks (per
    module; new modules included), or None when `new` adds none. Served hosts keep their
    weights, added ones take `new`'s; nothing is removed."""
    routes: dict[Key, tuple[Host, ...]] = {key: served.hosts(key) for key in served}
    weights: dict[Key, dict[Host, int]] = {key: served.weights(key) for key in served}
    grew = False
    added_keys: set[tuple[int, int, int, int]] = set()
    for key in new:
        have = set(routes.get(key, ()))
        extra = [
            h
            for h in new.hosts(key)
            if h not in have and (key[0], key[1], h[0], h[1]) in new.registered
        ]
        if not extra:
            continue
        grew = True
        routes[key] = tuple(sorted(have.union(extra)))
        new_weights = new.weights(key)
        bucket = weights.setdefault(key, {})
        for host in extra:
            added_keys.add((key[0], key[1], host[0], host[1]))
            if host in new_weights:
                bucket[host] = new_weights[host]
    if not grew:
        return None
    return RouteTable(
        served.version,
        routes,
        invalid_rows=served.invalid_rows,
        weights=weights,
        drained=served.drained,
        registrations=new.registrations,
        registered=served.registered | (new.registered & added_keys),
        instance_states=new.instance_states,
    )
