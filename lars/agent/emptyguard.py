"""How the agent takes a route service that empties most modules at once, sans-I/O.

The route service's own guard (lars.dns.guard) holds a mass deletion before it is
served. This is the defence in depth behind it, for a route service that serves one
anyway (an original Lars lars_dns serving an emptied table, a guard bypassed):

- Live: an empty answer (reply or push, from any route service) for a module that has
  hosts is applied at once, as an edit. When more than half of the modules that have
  hosts (and at least `min_modules`) are emptied within `window` seconds, the guard
  HOLDS: the modules emptied in that window get their last hosts back (the answers that
  crossed the threshold are withheld, so in a push burst the ones applied before it are
  NOEXIST for a moment only), and every later empty answer for a module with hosts is
  withheld too. A single module emptied is applied as before.
- After a restart the agent serves the routes of its cache file. Empty answers for those
  cached modules are withheld (PENDING, not applied) until the mass rule decides: a hold,
  or, once every cached module has answered or one has answered with hosts, they are
  applied as ordinary edits. No blip at all then.
- A hold ends when a route service answers one of the held modules with hosts again
  (RELEASE: its table is real again; the other held modules are re-asked and whatever
  the route service answers them is applied, not counted), or after `delay` seconds
  (EXPIRE: the held empty answers are applied). `delay` 0 turns the hold off: the mass
  empty is then only reported (MASS_EMPTY), as lars did before.

Plain values in, plain values out; time comes in as `now`; `deadline()` says when
`tick()` has work, so the owner (lars.agent.route_client) arms one timer.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from lars.agent.balancer import HostKey

__all__ = ["Answer", "EmptyGuard", "GuardEvent", "Outcome"]

ModuleKey = tuple[int, int]
Weights = dict[HostKey, int]  # the hosts whose weight is not the default (never mutated)
Route = tuple[list[HostKey], Weights]
Answer = tuple[ModuleKey, list[HostKey], Weights]

MIN_MODULES = 2
WINDOW = 10.0
DELAY = 300.0
_NO_WEIGHTS: Weights = {}


class GuardEvent(enum.Enum):
    MASS_EMPTY = "mass-empty"  # the rule matched with the hold off (delay 0): applied
    HOLD = "hold"  # the rule matched: the empty answers are withheld, last hosts served
    RELEASE = "release"  # a held module has hosts again: the others are re-asked
    EXPIRE = "expire"  # `delay` passed: the held empty answers are applied


class Outcome(NamedTuple):
    """What to deliver to the shards (in order), what happened, what to ask again."""

    deliver: list[Answer]
    event: GuardEvent | None = None
    reask: Sequence[ModuleKey] = ()


_NOTHING = Outcome([])
_new = tuple.__new__


def _only(deliver: list[Answer]) -> Outcome:
    """Outcome(deliver) at a third of the cost (NamedTuple defaults run Python code):
    once per route answer."""
    return _new(Outcome, (deliver, None, ()))


class EmptyGuard:
    """Filters route answers; one owner thread (the route client's loop)."""

    def __init__(
        self,
        *,
        min_modules: int = MIN_MODULES,
        window: float = WINDOW,
        delay: float = DELAY,
    ) -> None:
        self.min_modules = min_modules
        self.window = window
        self.delay = delay  # 0: never hold, only report
        # modules whose hosts are in service (delivered or cached), with those hosts
        self.served: dict[ModuleKey, Route] = {}
        # modules emptied (answer delivered) within the last `window`, oldest first
        self._emptied: OrderedDict[ModuleKey, tuple[float, Route]] = OrderedDict()
        self._stale: set[ModuleKey] = set()  # cached with hosts, unanswered since the start
        self.pending: dict[ModuleKey, Route] = {}  # cached, answered empty, withheld
        self._pending_since = 0.0
        self.held: dict[ModuleKey, Route] = {}  # empty answers withheld by a hold
        self.held_since: float | None = None
        self._released: set[ModuleKey] = set()  # re-asked after a RELEASE: not counted
        self._reported = False  # delay 0: MASS_EMPTY reported, until hosts come again
        self.holds = 0
        self.releases = 0  # holds ended by hosts
        self.expiries = 0  # holds ended by `delay`

    @property
    def holding(self) -> bool:
        return self.held_since is not None

    @property
    def enabled(self) -> bool:
        return self.delay > 0

    def seed(self, cached: Iterable[tuple[ModuleKey, list[HostKey], Weights]]) -> None:
        """The modules served from the cache file with hosts (at start)."""
        for key, hosts, weights in cached:
            if hosts:
                self.served[key] = (hosts, weights)
                if self.enabled:
                    self._stale.add(key)

    def deadline(self) -> float | None:
        """When `tick` has work to do (None: nothing waits on time)."""
        if self.held_since is None and not self.pending:
            return None  # the common case, once per answer: no list
        times = []
        if self.held_since is not None:
            times.append(self.held_since + self.delay)
        if self.pending:
            times.append(self._pending_since + self.window)
        return min(times) if times else None

    def tick(self, now: float) -> Outcome:
        """Apply what waited long enough: an expired hold, pending answers."""
        if self.held_since is not None and now - self.held_since >= self.delay:
            out: list[Answer] = [(key, [], _NO_WEIGHTS) for key in self.held]
            self.held.clear()
            self.held_since = None
            self.expiries += 1
            return Outcome(out, GuardEvent.EXPIRE)
        if self.pending and now - self._pending_since >= self.window:
            return Outcome(self._flush(now))
        return _NOTHING

    def answer(
        self, key: ModuleKey, hosts: list[HostKey], now: float, weights: Weights = _NO_WEIGHTS
    ) -> Outcome:
        """What to deliver for one answer (reply or push), and what happened."""
        if hosts:
            return self._hosts(key, hosts, weights, now)
        return self._empty(key, now)

    # the two kinds of answer

    def _hosts(self, key: ModuleKey, hosts: list[HostKey], weights: Weights, now: float) -> Outcome:
        if not (
            self._emptied or self.pending or self._stale or self._released or self._reported
        ) and (self.held_since is None):  # steady pushes: nothing to undo or to count
            self.served[key] = (hosts, weights)
            return _only([(key, hosts, weights)])
        self._released.discard(key)
        self._reported = False
        self.pending.pop(key, None)  # its withheld empty answer is superseded
        self._emptied.pop(key, None)
        answer: Answer = (key, hosts, weights)
        if self.held_since is not None:
            if key not in self.held:
                self.served[key] = (hosts, weights)
                return Outcome([answer])
            del self.held[key]
            others = list(self.held)
            self.served.update(self.held)  # still served, until their answers come
            self.served[key] = (hosts, weights)
            self._released.update(others)
            self.held.clear()
            self.held_since = None
            self.releases += 1
            return Outcome([answer], GuardEvent.RELEASE, others)
        out = self._flush(now) if self.pending or self._stale else []
        self.served[key] = (hosts, weights)
        out.append(answer)
        return Outcome(out)

    def _empty(self, key: ModuleKey, now: float) -> Outcome:
        if key in self._released:  # the route service's answer after a RELEASE
            self._released.discard(key)
            self.served.pop(key, None)
            return Outcome([(key, [], _NO_WEIGHTS)])
        if key in self.held or key in self.pending:
            return _NOTHING  # withheld already
        route = self.served.pop(key, None)
        if route is None:  # had no hosts: nothing to keep
            return Outcome([(key, [], _NO_WEIGHTS)])
        if self.held_since is not None:
            self.held[key] = route
            return _NOTHING
        self._prune(now)
        if key in self._stale:
            self._stale.discard(key)
            if not self.pending:
                self._pending_since = now
            self.pending[key] = route
            if self._mass():
                return self._hold(now, key)
            return _NOTHING if self._stale else Outcome(self._flush(now))
        self._emptied[key] = (now, route)
        if self._mass():
            return self._hold(now, key)
        return Outcome([(key, [], _NO_WEIGHTS)])

    # the rule and its outcomes

    def _prune(self, now: float) -> None:
        """Drop modules emptied more than `window` ago (oldest first: amortised O(1), so
        a mass-empty of 20k modules stays linear and the map holds one window at most)."""
        emptied = self._emptied
        while emptied:
            oldest, (at, _) = next(iter(emptied.items()))
            if now - at <= self.window:
                break
            del emptied[oldest]

    def _mass(self) -> bool:
        """More than half of the modules that had hosts in the window (and at least
        `min_modules`) emptied within it."""
        emptied = len(self._emptied) + len(self.pending)
        had = emptied + len(self.served)
        return emptied >= self.min_modules and 2 * emptied > had

    def _hold(self, now: float, last: ModuleKey) -> Outcome:
        """The rule matched on the answer for `last` (not delivered yet)."""
        emptied = self._emptied
        if not self.enabled:  # report once (until hosts come again), apply as answered
            event = None if self._reported else GuardEvent.MASS_EMPTY
            self._reported = True
            return Outcome([(last, [], _NO_WEIGHTS)], event)
        restore: list[Answer] = [(k, r[0], r[1]) for k, (_, r) in emptied.items() if k != last]
        self.held = {k: r for k, (_, r) in emptied.items()}
        self.held.update(self.pending)
        emptied.clear()
        self.pending.clear()
        self._stale.clear()
        self.held_since = now
        self.holds += 1
        return Outcome(restore, GuardEvent.HOLD)

    def _flush(self, now: float) -> list[Answer]:
        """Apply the pending answers as edits (they count in the window from now)."""
        out: list[Answer] = []
        for key, route in self.pending.items():
            self._emptied[key] = (now, route)
            out.append((key, [], _NO_WEIGHTS))
        self.pending.clear()
        self._stale.clear()
        return out
