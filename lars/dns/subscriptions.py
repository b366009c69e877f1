"""Per-worker subscriptions: which of a worker's connections want which modules, sans-I/O.

Each reactor worker owns one Subscriptions for its own connections and touches it only on
its own loop thread, so it needs no lock. Subscriptions are keyed by connection objects,
not file descriptors, so a push can never reach a socket that was closed and reused.
A connection may subscribe to at most `max_per_conn` modules, so a hostile peer asking
for millions of module ids cannot grow the server's memory without bound.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from lars.dns.table import Key

__all__ = ["DEFAULT_MAX_PER_CONN", "Subscriptions"]

C = TypeVar("C", bound=Hashable)

DEFAULT_MAX_PER_CONN = 100_000


class Subscriptions(Generic[C]):
    """module -> connections and connection -> modules, kept in step."""

    __slots__ = ("_by_conn", "_by_key", "_total", "max_per_conn", "refused")

    def __init__(self, max_per_conn: int = DEFAULT_MAX_PER_CONN) -> None:
        if max_per_conn < 1:
            raise ValueError("max_per_conn must be >= 1")
        self.max_per_conn = max_per_conn
        self._by_key: dict[Key, set[C]] = {}
        self._by_conn: dict[C, set[Key]] = {}
        self.refused = 0  # subscriptions refused by the per-connection cap
        self._total = 0  # kept as a counter so stats() on another thread never iterates

    def subscribe(self, conn: C, key: Key) -> bool:
        """Subscribe `conn` to `key`; False (and counted) when its cap is reached."""
        keys = self._by_conn.get(conn)
        if keys is None:
            keys = self._by_conn[conn] = set()
        elif key in keys:
            return True
        if len(keys) >= self.max_per_conn:
            self.refused += 1
            return False
        keys.add(key)
        self._total += 1
        conns = self._by_key.get(key)
        if conns is None:
            self._by_key[key] = {conn}
        else:
            conns.add(conn)
        return True

    def drop(self, conn: C) -> int:
        """Forget every subscription of a closed connection; return how many it had."""
        keys = self._by_conn.pop(conn, None)
        if not keys:
            return 0
        self._total -= len(keys)
        for key in keys:
            conns = self._by_key.get(key)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._by_key[key]
        return len(keys)

    def subscribers(self, key: Key) -> list[C]:
        """The connections subscribed to `key` (a copy: safe while they close)."""
        conns = self._by_key.get(key)
        return list(conns) if conns else []

    def keys_of(self, conn: C) -> frozenset[Key]:
        return frozenset(self._by_conn.get(conn, ()))

    @property
    def connections(self) -> int:
        return len(self._by_conn)

    @property
    def modules(self) -> int:
        return len(self._by_key)

    def __len__(self) -> int:
        """The number of (connection, module) subscriptions."""
        return self._total
