"""Never backwards: an agent does not apply a module's table older than the one it has.

Route services may read MySQL replicas (issue 22), and replicas lag by different amounts.
An agent that fails over from a fresher replica's route service to a staler one would
otherwise apply the staler tables and undo edits it had already served, then redo them
when the replica catches up. A lars route service sets GetRouteResponse.version (field
4) to its table's RouteVersion; an original lars_dns leaves it unset (0).

`VersionGate` is the sans-I/O rule, per module (time comes in as `now`):
- an answer without a version (an original route service) is applied as today, and the
  module's version is forgotten (the next versioned answer is taken whatever it is);
- an answer whose version is the same or newer than the module's (serial-number order,
  lars.protocol.version.is_newer: a renumber past 4294967295 to 1 counts as newer) is
  applied, and any older answer waiting is dropped;
- an older answer is not applied. It waits: if the connected route service still
  answers that module with an older table `keep` (30) seconds after its first older
  answer, and nothing newer came meanwhile, the database really was rolled back, and
  the waiting answer (the latest one) is applied. A newer answer ends the wait (the
  replica caught up and pushed). The wait belongs to the connection: a reconnection
  (to this or another route service) starts it again.

The caller (lars.agent.route_client) keeps one timer for `deadline()` and calls `tick`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from lars.protocol.version import is_newer

__all__ = ["MAX_TRACKED", "ROLLBACK_AFTER", "VersionGate"]

ROLLBACK_AFTER = 30.0  # seconds a route service keeps an older table before it is taken
# Modules whose version is remembered: past it the longest-remembered is forgotten (its
# next answer is taken whatever its version, as today), so answers for made-up modules
# cannot grow the agent's memory without bound (the shards cap modules at 20,000 each).
MAX_TRACKED = 200_000

K = TypeVar("K", bound=Hashable)
P = TypeVar("P")


@dataclass(slots=True)
class _Waiting(Generic[P]):
    version: int
    since: float  # the connection's first older answer for the module
    payload: P  # the latest older answer


class VersionGate(Generic[K, P]):
    """Which route answers to apply; `payload` is the caller's parsed answer."""

    def __init__(self, keep: float = ROLLBACK_AFTER, max_tracked: int = MAX_TRACKED) -> None:
        self.keep = keep
        self._max_tracked = max_tracked
        self._applied: dict[K, int] = {}  # the version of each module's applied table
        self._waiting: dict[K, _Waiting[P]] = {}
        self.refused = 0  # older answers not applied (at once)
        self.rollbacks = 0  # older answers applied after `keep`

    def version(self, key: K) -> int | None:
        """The version of the module's applied table (None: unknown or unversioned)."""
        return self._applied.get(key)

    @property
    def waiting(self) -> int:
        """Modules whose route service answers an older table than the one applied."""
        return len(self._waiting)

    def seed(self, key: K, version: int) -> None:
        """A version known before any answer (the route cache, at start): an older answer
        then waits as it would after an applied one."""
        if version:
            self._remember(key, version)

    def answer(self, key: K, version: int, payload: P, now: float) -> bool:
        """True: apply this answer now. False: it is older than the module's table (it
        waits; `tick` hands it back once the route service has kept it `keep` s)."""
        if version == 0:  # an original route service: no order known, applied as today
            self._applied.pop(key, None)
            self._waiting.pop(key, None)
            return True
        current = self._applied.get(key)
        if current is None or not is_newer(current, version):
            self._remember(key, version)
            self._waiting.pop(key, None)
            return True
        self.refused += 1
        waiting = self._waiting.get(key)
        since = waiting.since if waiting is not None else now
        self._waiting[key] = _Waiting(version, since, payload)
        return False

    def _remember(self, key: K, version: int) -> None:
        applied = self._applied
        if key not in applied and len(applied) >= self._max_tracked:
            oldest = next(iter(applied))  # insertion order: the longest remembered
            del applied[oldest]
            self._waiting.pop(oldest, None)
        applied[key] = version

    def connection_changed(self) -> None:
        """A new connection (or none): older answers wait again from their next one."""
        self._waiting.clear()

    def deadline(self) -> float | None:
        """When `tick` has something to hand back (None: nothing waits)."""
        if not self._waiting:
            return None
        return min(w.since for w in self._waiting.values()) + self.keep

    def tick(self, now: float) -> list[tuple[K, int, P]]:
        """The older answers kept `keep` seconds: (module, version, payload) to apply."""
        due = [(k, w) for k, w in self._waiting.items() if now - w.since >= self.keep]
        out: list[tuple[K, int, P]] = []
        for key, w in due:
            del self._waiting[key]
            self._remember(key, w.version)
            self.rollbacks += 1
            out.append((key, w.version, w.payload))
        return out
