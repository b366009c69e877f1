"""LeaseBook: which registration writes a route service owes the database, and when.
Sans-I/O: time comes in as `now`; lars.dns.registry's thread does the writes.

Every InstanceSync is an agent's full set. `offer` keeps the newest set per agent:
- a set that differs from what this route service last wrote for the agent (or from an
  agent it has not written for since it started) is a CHANGE: written at once (the writer
  wakes up; syncs arriving meanwhile are coalesced into the same transaction);
- a set equal to it is a lease RENEWAL: renewals are batched, at most one write per
  `renew_interval` (1 s) for every agent together.
The same once-a-second tick asks for the expiry of leases that ran out, in the same
transaction as the renewals: one write a second in the steady state.

`take(now)` hands out a Batch when one is due; the writer reports `done(batch, ...)` or
`failed(batch)`. A failed batch goes back (unless a newer set of the agent arrived), so a
database outage loses no registration: the newest set per agent is kept, bounded by
`max_agents` (an agent past it is refused and counted; its own renewals retry).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from lars.dns.instances import Instance

__all__ = ["DEFAULT_LEASE", "Batch", "LeaseBook"]

DEFAULT_LEASE = 10.0
DEFAULT_RENEW_INTERVAL = 1.0
DEFAULT_MAX_AGENTS = 200_000

InstanceSet = frozenset[Instance]


@dataclass(slots=True)
class Batch:
    """One transaction's worth: full sets to apply, agents to renew, expiry or not."""

    changes: dict[str, InstanceSet] = field(default_factory=dict)
    renewals: set[str] = field(default_factory=set)
    expire: bool = False

    def __bool__(self) -> bool:
        return bool(self.changes or self.renewals or self.expire)


class LeaseBook:
    """The pending writes of one route service (owned by its registry thread)."""

    def __init__(
        self,
        *,
        lease: float = DEFAULT_LEASE,
        renew_interval: float = DEFAULT_RENEW_INTERVAL,
        max_agents: int = DEFAULT_MAX_AGENTS,
    ) -> None:
        self.lease = lease
        self._renew_interval = renew_interval
        self._max_agents = max_agents
        self._known: dict[str, InstanceSet] = {}  # what this service last wrote per agent
        self._changes: dict[str, InstanceSet] = {}
        self._renewals: set[str] = set()
        self._ticked_at = -math.inf  # the last renewals-and-expiry tick
        self.refused = 0  # syncs refused: max_agents pending changes

    @property
    def pending(self) -> int:
        return len(self._changes) + len(self._renewals)

    def offer(self, agent: str, instances: Iterable[Instance]) -> bool:
        """Record an agent's full set; False when refused (too many agents pending)."""
        wanted = frozenset(instances)
        if self._known.get(agent) == wanted and agent not in self._changes:
            self._renewals.add(agent)
            return True
        if agent not in self._changes and len(self._changes) >= self._max_agents:
            self.refused += 1
            return False
        self._changes[agent] = wanted
        self._renewals.discard(agent)
        return True

    def has_changes(self) -> bool:
        return bool(self._changes)

    def next_due(self, now: float) -> float:
        """Seconds until take() has something (0: now)."""
        if self._changes:
            return 0.0
        return max(0.0, self._ticked_at + self._renew_interval - now)

    def take(self, now: float) -> Batch:
        """What is due now (possibly nothing). Changes always (the changed agents' leases
        are renewed with them); the renewals and the expiry once per renew_interval,
        together (the tick)."""
        batch = Batch()
        if self._changes:
            batch.changes, self._changes = self._changes, {}
        if now - self._ticked_at >= self._renew_interval:
            batch.renewals, self._renewals = self._renewals, set()
            batch.expire = True
            self._ticked_at = now
        return batch

    def done(self, batch: Batch, *, renewed_all: bool = True) -> None:
        """The batch is written. `renewed_all` False: fewer rows were renewed than this
        service believed its agents own (another route service expired or changed them),
        so the renewed agents' sets are diffed in full again, at once."""
        self._known.update(batch.changes)
        if not renewed_all:  # diff the renewed agents' sets in full at once (next flush)
            for agent in batch.renewals:
                known = self._known.pop(agent, None)
                if known is not None:
                    self._changes.setdefault(agent, known)
                    self._renewals.discard(agent)

    def failed(self, batch: Batch) -> None:
        """The batch was not written: keep its work unless newer arrived meanwhile."""
        for agent, wanted in batch.changes.items():
            self._changes.setdefault(agent, wanted)
            self._renewals.discard(agent)
        for agent in batch.renewals:
            if agent not in self._changes:
                self._renewals.add(agent)
        if batch.renewals or batch.expire:
            self._ticked_at = -math.inf

    def forget(self, agents: Iterable[str]) -> None:
        """These agents' rows were expired here: diff their next sync in full."""
        for agent in agents:
            self._known.pop(agent, None)

    def expected_rows(self, agents: Iterable[str]) -> int:
        """How many rows this service believes `agents` own (for the renewal check)."""
        return sum(len(self._known.get(a, ())) for a in agents)
