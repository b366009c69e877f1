"""What the route cache file keeps, sans-I/O: each module's last NON-EMPTY host list.

The shards hand over snapshots of what they serve now. A module that has hosts is
recorded as current (`at` = when it was received). A module the route service now
answers empty for, or that a shard forgot (known-empty modules expire), keeps its last
good hosts with `empty_since` set: an emptied table is never persisted over a good one,
so an agent restarted after a push-empty incident still has the routes. Such an entry
leaves the book `keep` seconds (default 24 h) after it went empty: how a module that was
deliberately deleted eventually leaves the cache. A module that never had hosts is kept
as known-empty while a shard has it and dropped when the shard forgets it.

Modules loaded from the file are *stale* until the route service answers for them: the
shards serve their cached hosts meanwhile, and a snapshot of those must not refresh the
entry as current (`answered()` ends that, called for every answer delivered).
Time comes in as unix seconds (`now`).

Host weights (lars only, HostInfo.weight) are kept with the hosts they belong to, as the
shards hand them over: `weights` per module, only the hosts whose weight is not 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from lars.agent.balancer import HostKey

__all__ = ["DEFAULT_KEEP", "CachedRoute", "RouteBook", "Routes"]

Routes = list[tuple[int, int, list[HostKey]]]
ModuleKey = tuple[int, int]
Weights = Mapping[ModuleKey, Mapping[HostKey, int]]  # modules with a host weight != 1

DEFAULT_KEEP = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class CachedRoute:
    """One module of the cache file. `at`: unix time its hosts were last received as
    current (None in files of older versions); `empty_since`: unix time since when the
    route service answers empty for it (None: the hosts are current)."""

    modid: int
    cmdid: int
    hosts: list[HostKey]
    at: float | None = None
    empty_since: float | None = None
    weights: dict[HostKey, int] = field(default_factory=dict)  # hosts with weight != 1
    # the route table version the hosts came with (GetRouteResponse.version; None: an
    # original route service, or a file of an older agent): a restarted agent does not
    # go back to an older table either (lars.agent.freshness)
    version: int | None = None

    @property
    def key(self) -> ModuleKey:
        return (self.modid, self.cmdid)

    @property
    def kept(self) -> bool:
        """Hosts kept from before the route service answered empty."""
        return self.empty_since is not None and bool(self.hosts)


class RouteBook:
    """Merges shard snapshots into the entries to write; one owner thread."""

    def __init__(self, shard_of: Callable[[int, int], int], *, keep: float = DEFAULT_KEEP) -> None:
        self._shard_of = shard_of
        self.keep = keep
        self.entries: dict[ModuleKey, CachedRoute] = {}
        self.stale: set[ModuleKey] = set()  # loaded from the file, not answered since

    def seed(self, entries: Iterable[CachedRoute], now: float) -> list[CachedRoute]:
        """Start from the loaded file (expired entries dropped); returns what was kept."""
        for entry in entries:
            self.entries[entry.key] = entry
        self.expire(now)
        self.stale = set(self.entries)
        return list(self.entries.values())

    def answered(self, modid: int, cmdid: int) -> None:
        """The route service answered for this module: its snapshots are current again."""
        self.stale.discard((modid, cmdid))

    def update(
        self, index: int, routes: Routes, now: float, weights: Weights | None = None
    ) -> None:
        """Shard `index` now serves `routes` (all of its modules with a route reply), with
        `weights` for the modules that have a host weight other than 1."""
        entries = self.entries
        weights = weights or {}
        seen: set[ModuleKey] = set()
        for modid, cmdid, hosts in routes:
            key = (modid, cmdid)
            seen.add(key)
            if key in self.stale:
                continue  # the shard serves what the file had: nothing new
            old = entries.get(key)
            if hosts:
                mine = dict(weights.get(key, {}))
                entries[key] = CachedRoute(modid, cmdid, list(hosts), now, weights=mine)
            elif old is not None and old.hosts:
                if old.empty_since is None:
                    entries[key] = replace(old, empty_since=now)
            else:
                entries[key] = CachedRoute(modid, cmdid, [], now)
        for key, old in list(entries.items()):
            if key in seen or key in self.stale or self._shard_of(*key) != index:
                continue
            if not old.hosts:
                del entries[key]  # a known-empty module the shard forgot
            elif old.empty_since is None:
                entries[key] = replace(old, empty_since=now)

    def expire(self, now: float) -> int:
        """Drop entries empty for `keep` seconds; return how many went."""
        gone = [
            key
            for key, e in self.entries.items()
            if e.empty_since is not None and now - e.empty_since >= self.keep
        ]
        for key in gone:
            del self.entries[key]
            self.stale.discard(key)
        return len(gone)

    def snapshot(self) -> list[CachedRoute]:
        return list(self.entries.values())
