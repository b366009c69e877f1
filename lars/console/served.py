"""While a table is held: what agents are served, and the held change beside it.

The route services save the table they serve (RouteGuardState, lars/routes/guardstate.py);
while they hold a newer one, the database's RouteData is that held table, not what agents
get. The module list then shows the served table (`served_entries`) with, per module,
the change the held table would make (`held_changes`): hosts in the database's table,
how many it adds and removes. The console reads the saved state through RouteAdmin and
never imports lars.dns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from lars.protocol import uint_to_dotted
from lars.routes.guardstate import GuardState
from lars.routes.routelist import RouteEntry

__all__ = ["ModuleChange", "held_changes", "served_entries"]

Key = tuple[int, int]


class Listed(Protocol):
    """A host of the database's route list (lars.routes.admin.RouteEntry)."""

    @property
    def modid(self) -> int: ...
    @property
    def cmdid(self) -> int: ...
    @property
    def ip(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def enabled(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ModuleChange:
    """One module: hosts served now, hosts the held table gives it, and the difference."""

    served: int
    held: int
    added: int
    removed: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def served_entries(state: GuardState) -> list[RouteEntry]:
    """The served table as route-list entries (drained hosts included, drained)."""
    entries = [
        RouteEntry(m, c, uint_to_dotted(ip), port, weight=w)
        for (m, c), hosts in state.routes.items()
        for ip, port, w in hosts
    ]
    entries += [
        RouteEntry(m, c, uint_to_dotted(ip), port, weight=w, enabled=False)
        for m, c, ip, port, w in state.drained
    ]
    return sorted(entries, key=lambda e: (e.modid, e.cmdid, e.ip, e.port))


def held_changes(state: GuardState, database: Iterable[Listed]) -> dict[Key, ModuleChange]:
    """Per module of either table: served hosts against the database's enabled hosts."""
    served: dict[Key, set[tuple[str, int]]] = {
        key: {(uint_to_dotted(ip), port) for ip, port, _w in hosts}
        for key, hosts in state.routes.items()
    }
    held: dict[Key, set[tuple[str, int]]] = {}
    for e in database:
        if e.enabled:
            held.setdefault((e.modid, e.cmdid), set()).add((e.ip, e.port))
    out: dict[Key, ModuleChange] = {}
    for key in served.keys() | held.keys():
        now, then = served.get(key, set()), held.get(key, set())
        out[key] = ModuleChange(len(now), len(then), len(then - now), len(now - then))
    return out
