"""How the agent takes a route service that answers empty for everything, sans-I/O.

Live, the agent follows its route service: an empty answer makes the module
known-empty (the route service's own guard is what holds a mass deletion). The guard
here only *notices* when every module that had hosts went empty within `window`
seconds (at least `min_modules` of them: one module emptied is a normal edit) and
reports it once (MASS_EMPTY), re-armed when a module has hosts again.

After a restart the agent serves the routes of its cache file, stale. If the route
service then answers empty for every cached module that had hosts (at least
`min_modules`), that is the signature of a push-empty incident (for example an original
Lars route service serving an emptied table): those empty answers are *held*, not
delivered, and the cached hosts stay in service (HOLD). The first answer with hosts for
any module shows that the route service has a real table again: the held empty answers
are then delivered (RELEASE) and the guard steps aside. Time comes in as `now`.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable

from lars.agent.balancer import HostKey

__all__ = ["EmptyGuard", "GuardEvent"]

ModuleKey = tuple[int, int]
Answer = tuple[ModuleKey, list[HostKey]]

MIN_MODULES = 2
WINDOW = 10.0


class GuardEvent(enum.Enum):
    MASS_EMPTY = "mass-empty"  # every module lost its hosts at once (delivered)
    HOLD = "hold"  # after a restart: every cached module answered empty (held)
    RELEASE = "release"  # hosts again: the held empty answers are delivered


class EmptyGuard:
    """Filters route answers; one owner thread (the route client's loop)."""

    def __init__(self, *, min_modules: int = MIN_MODULES, window: float = WINDOW) -> None:
        self.min_modules = min_modules
        self.window = window
        self.with_hosts: set[ModuleKey] = set()  # latest delivered answer (or cache) has hosts
        self.held: dict[ModuleKey, list[HostKey]] = {}  # withheld empty answers
        self.holding = False
        self._stale: set[ModuleKey] = set()  # cached with hosts, no answer since the restart
        # had hosts, answered empty at (in that order; only the last `window` is kept)
        self._emptied: OrderedDict[ModuleKey, float] = OrderedDict()

    def seed(self, cached_with_hosts: Iterable[ModuleKey]) -> None:
        """The modules served from the cache file with hosts (at start)."""
        keys = set(cached_with_hosts)
        self.with_hosts |= keys
        self._stale = keys if len(keys) >= self.min_modules else set()

    def answer(
        self, key: ModuleKey, hosts: list[HostKey], now: float
    ) -> tuple[list[Answer], GuardEvent | None]:
        """What to deliver for one answer (reply or push), and what happened."""
        if hosts:
            return self._hosts(key, hosts)
        if key in self._stale or key in self.held:
            self._stale.discard(key)
            self.held[key] = hosts
            if not self._stale and not self.holding:
                self.holding = True
                return [], GuardEvent.HOLD
            return [], None
        if key not in self.with_hosts:
            return [(key, hosts)], None
        self.with_hosts.discard(key)
        emptied = self._emptied
        # Only modules emptied within `window` can count: drop older ones (the oldest come
        # first), or the map keeps every module that ever went empty while others kept
        # their hosts. Amortised O(1): a mass-empty of 20k modules stays linear.
        while emptied:
            oldest, at = next(iter(emptied.items()))
            if now - at <= self.window:
                break
            del emptied[oldest]
        emptied[key] = now
        if self.with_hosts:
            return [(key, hosts)], None
        recent = len(emptied)
        emptied.clear()
        event = GuardEvent.MASS_EMPTY if recent >= self.min_modules else None
        return [(key, hosts)], event

    def _hosts(
        self, key: ModuleKey, hosts: list[HostKey]
    ) -> tuple[list[Answer], GuardEvent | None]:
        self.with_hosts.add(key)
        self._emptied.pop(key, None)
        out: list[Answer] = [(key, hosts)]
        if not self.held and not self._stale:
            return out, None
        event = GuardEvent.RELEASE if self.holding else None
        released = [(k, h) for k, h in self.held.items() if k != key]
        for held_key, _ in released:
            self.with_hosts.discard(held_key)
        self.held.clear()
        self._stale.clear()
        self.holding = False
        return released + out, event
