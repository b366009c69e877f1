"""The poller's decisions: when to reload the route table, what to push, what to hold.

`Poller` does one step at a time with the clock value it is given (testable with a fake
store and fake time); `lars.dns.pollthread.PollerThread` owns the thread that drives it.

Change detection cannot miss an edit: a poll (one cheap statement) reloads when
- the version differs from the last loaded one, or
- the newest RouteChange id differs from the one the last load left behind (a second
  edit in the same second keeps `version = UNIX_TIMESTAMP()` equal but adds a row; a
  RouteChange row without a version bump is seen the same way), or
- `reload_interval` has passed: then the diff of the old and new table finds edits made
  without a version bump or a RouteChange row.
Each loaded table passes the push-empty guard (lars.dns.guard) before it is served; a
held table is not served or pushed until it changes again or an operator releases it.

A service that starts while RouteAudit says the current version is held (another route
service held it, or this one before a restart) has no good table to keep serving, so it
holds that table too and serves nothing (`table` stays None: DnsService does not listen,
agents keep using their other route services and caches) until the release or a change.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Protocol

from lars.dns.guard import GuardPolicy, Hold, Verdict, check
from lars.dns.store import PollMark, Snapshot
from lars.dns.table import Key, RouteTable, changed_modules
from lars.routes.audit import AuditEntry

__all__ = ["Poller", "Publish", "Step"]

log = logging.getLogger(__name__)

# Called with the new table and the modules to push, after which the table is live.
Publish = Callable[[RouteTable, set[Key]], None]


class Store(Protocol):
    def poll(self, release_after: int | None = None) -> PollMark: ...
    def load(self) -> Snapshot: ...
    def delete_changes(self, ids: list[int]) -> int: ...


class Audit(Protocol):
    def active_hold(self) -> AuditEntry | None: ...
    def record_hold(self, version: int, detail: str) -> int | None: ...
    def release_after(self, hold_id: int) -> AuditEntry | None: ...
    def record_apply(self, version: int, detail: str) -> None: ...
    def record_sql_edits(self, old: RouteTable, new: RouteTable, changed: set[Key]) -> int: ...


class Step(enum.Enum):
    """What a poll found to do."""

    NOTHING = "nothing"
    LOAD = "load"
    RELEASE = "release"


class Poller:
    """Polls the store; reloads on a change (or every reload_interval); guards; publishes.

    Pushed modules are those named by the RouteChange rows read (version <= the new
    version) plus those whose hosts differ between the served and the new table. Exactly
    the change rows read are deleted afterwards.
    """

    def __init__(
        self,
        store: Store,
        publish: Publish,
        *,
        reload_interval: float,
        policy: GuardPolicy | None = None,
        audit: Audit | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._publish = publish
        self._reload_interval = reload_interval
        self._policy = policy if policy is not None else GuardPolicy()
        self._audit = audit
        self._wall = wall
        self._table: RouteTable | None = None  # served
        self._loaded: RouteTable | None = None  # last loaded (served or held)
        self._mark: tuple[int, int | None] | None = None  # (version, change mark) expected
        self._loaded_at = float("-inf")
        self._held: RouteTable | None = None
        self._pending: set[Key] = set()  # change-row modules not pushed yet (while held)
        self.hold: Hold | None = None
        self.polls = 0
        self.loads = 0
        self.pushed_modules = 0
        self.holds = 0
        self.sql_audit_rows = 0

    @property
    def table(self) -> RouteTable | None:
        return self._table

    def retune(self, *, reload_interval: float, policy: GuardPolicy) -> None:
        """New reload interval and guard policy (SIGHUP), from any thread: two reference
        assignments of immutable values, which the poll thread reads at its next step."""
        self._reload_interval = reload_interval
        self._policy = policy

    def poll(self, now: float) -> bool:
        """One poll and what it asks for; True when a table was loaded or released."""
        step = self.check(now)
        self.run(step, now)
        return step is not Step.NOTHING

    def check(self, now: float) -> Step:
        """The cheap poll: one statement. Raises StoreUnavailable."""
        hold = self.hold
        release_after = hold.audit_id if hold is not None else None
        mark = self._store.poll(release_after)
        self.polls += 1
        if hold is not None and mark.release_id is not None:
            return Step.RELEASE
        if self._mark != (mark.version, mark.change_max):
            return Step.LOAD
        if now - self._loaded_at >= self._reload_interval:
            return Step.LOAD
        return Step.NOTHING

    def run(self, step: Step, now: float) -> None:
        if step is Step.LOAD:
            self.load(now)
        elif step is Step.RELEASE:
            self.release()

    def load(self, now: float) -> set[Key]:
        """Load a snapshot, guard it, publish it (unless held), delete its change rows,
        audit plain-SQL edits; return the pushed modules."""
        self._mark = None  # a load that fails half-way is redone by the next poll
        snap = self._store.load()
        new = RouteTable.from_rows(snap.version, snap.routes, snap.meta)
        self._pending |= {(c.modid, c.cmdid) for c in snap.changes}
        served, previous = self._table, self._loaded
        pushed: set[Key] = set()
        served_diff: set[Key] | None = None  # changed_modules(served, new), once computed
        if served is None:  # the first load: nothing to compare with, nothing to push
            active = self._audit.active_hold() if self._audit is not None else None
            if active is not None and active.version == new.version:
                self._hold_at_start(new, active)
            else:
                self._apply(new, set(), ended="table changed")
                self._pending.clear()
        else:
            verdict = check(served, new, self._policy)
            if verdict.hold:
                self._hold(served, new, verdict)
            else:
                served_diff = changed_modules(served, new)
                pushed = served_diff | self._pending
                self._apply(new, pushed, ended="table changed")
        if snap.changes:
            self._store.delete_changes([c.id for c in snap.changes])
        if previous is not None and self._audit is not None:
            if served_diff is not None and previous is served:
                edited = served_diff  # the same two tables (nothing was held): diffed once
            else:
                edited = changed_modules(previous, new)
            self.sql_audit_rows += self._audit.record_sql_edits(previous, new, edited)
        self.loads += 1
        self._loaded = new
        self._loaded_at = now
        self._mark = (snap.version, snap.change_mark)
        return pushed

    def release(self) -> None:
        """Apply the held table after an operator's release row (read by check())."""
        held, hold, served = self._held, self.hold, self._table
        if held is None or hold is None:
            return
        actor = "an operator"
        if self._audit is not None and hold.audit_id is not None:
            entry = self._audit.release_after(hold.audit_id)
            if entry is not None:
                actor = entry.actor
        pushed = changed_modules(served, held) | self._pending if served is not None else set()
        self._apply(held, pushed, ended=f"released by {actor}")

    def _apply(self, table: RouteTable, pushed: set[Key], ended: str = "") -> None:
        first = self._table is None
        self._publish(table, pushed)
        self._table = table
        self._pending.clear()
        if not first:
            self.pushed_modules += len(pushed)
        hold = self.hold
        if hold is not None:
            self._held = self.hold = None
            log.warning(
                "dns: route table hold ended (%s): now serving version %d, %d modules, "
                "%d hosts (held since version %d)",
                ended,
                table.version,
                len(table),
                table.host_count,
                hold.version,
            )
            if self._audit is not None:
                self._audit.record_apply(table.version, ended)

    def _hold_at_start(self, new: RouteTable, row: AuditEntry) -> None:
        if self._held is not None and self._held.same_routes(new):
            return
        self._held = new
        self.holds += 1
        self.hold = Hold.from_row(new, row.id, row.detail, since=float(row.ts))
        log.error(
            "dns: route table version %d is HELD (RouteAudit hold #%d by %s: %s) and this "
            "route service has no earlier table to serve: not listening until it is "
            "released (`lars route release`) or the table changes",
            new.version,
            row.id,
            row.actor,
            row.detail,
        )

    def _hold(self, served: RouteTable, new: RouteTable, verdict: Verdict) -> None:
        held = self._held
        if held is not None and held.same_routes(new):
            return  # the same held table reloaded: already logged and recorded
        ratio = self._policy.max_drop_ratio
        audit_id = None
        if self._audit is not None:
            audit_id = self._audit.record_hold(new.version, verdict.describe(ratio))
        self._held = new
        self.holds += 1
        self.hold = Hold.from_verdict(
            verdict, new.version, served.version, since=self._wall(), audit_id=audit_id
        )
        log.error(
            "dns: HOLDING route table version %d (%s): it would remove %d of %d hosts in "
            "%d modules: modules %d->%d, hosts %d->%d (max_drop_ratio %g). Still serving "
            "version %d; it is applied when the table changes again into one that passes, "
            "or on `lars route release`",
            new.version,
            "empty table" if verdict.reason == "empty" else "mass removal",
            verdict.removed_hosts,
            verdict.hosts_before,
            verdict.modules_losing,
            verdict.modules_before,
            verdict.modules_after,
            verdict.hosts_before,
            verdict.hosts_after,
            ratio,
            served.version,
        )
