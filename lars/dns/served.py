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
"""

from __future__ import annotations

from lars.dns.instances import served_rows
from lars.dns.store import Snapshot
from lars.dns.table import RouteTable

__all__ = ["build_table"]


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
