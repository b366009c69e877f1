"""The poller's decisions: when to reload the route table, what to push, what to hold.

`Poller` does one step at a time with the clock value it is given (testable with a fake
store and fake time); `lars.dns.pollthread.PollerThread` owns the thread that drives it.

Change detection cannot miss an edit: a poll (one cheap statement) reloads when
- the version differs from the last loaded one, or
- the newest RouteChange id differs from the one the last load left behind (a second
  edit in the same second keeps `version = UNIX_TIMESTAMP()` equal but adds a row; a
  RouteChange row without a version bump is seen the same way), or
  (change rows need not be deleted: a service that does not clean, `[dns] clean_changes`
  off or a read-only database, expects the newest id of all rows and reads only rows
  newer than those it already pushed, so each row is pushed once; RouteAdmin trims
  rows older than a retention, lars/routes/changegc.py. InnoDB never reuses ids;
  SQLite reuses the id of a deleted newest row, so there a service that does not clean
  may see a row made without a version bump only at its periodic reload), or
- the registration mark differs (RouteInstanceMark, raised by any route service that
  wrote a registration change: lars.dns.registry), or
- `reload_interval` has passed: then the diff of the old and new table finds edits made
  without a version bump or a RouteChange row.
Each loaded table passes the push-empty guard (lars.dns.guard: the identity check against
the served table and the window check against each module's baseline, lars.dns.baseline)
before it is served; a held table is not served or pushed until it changes again into
one that passes, an operator releases it, or restores the served table.

The guard state survives restarts (`state`, lars.dns.guardstore: the database and a local
snapshot file): after every table served and every hold that begins or ends, the served
table, the window's past peaks and the hold are saved. A starting service that finds a
saved state judges its first table against that last good table and baseline exactly as
a running one would: if held, it serves the last good table (never the held one), and a
hold saved before the restart is the same hold (same audit row, same start: the baseline
does not age) when the table is still the held one.

A service that starts with no saved state while RouteAudit says the current version is
held (an upgrade from a lars without the state) has no good table to keep serving, so it
holds that table too and serves nothing (`table` stays None: DnsService does not listen,
agents keep using their other route services and caches) until the release or a change.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from typing import Protocol

from lars.dns.baseline import Baseline
from lars.dns.guard import GuardPolicy, Hold, Verdict, counts, judge
from lars.dns.served import build_table, with_additions
from lars.dns.store import PollMark, Snapshot
from lars.dns.table import Key, RouteTable, changed_modules
from lars.errors import StoreUnavailable
from lars.ratelog import RateLimitedLog
from lars.routes.audit import AuditEntry
from lars.routes.guardstate import Drained, GuardState, HeldInfo, HostW, routes_digest

__all__ = ["Poller", "Publish", "Step"]

log = logging.getLogger(__name__)

# Called with the new table and the modules to push, after which the table is live.
Publish = Callable[[RouteTable, set[Key]], None]


class Store(Protocol):
    def poll(self, release_after: int | None = None) -> PollMark: ...
    def load(self, after: int | None = None) -> Snapshot: ...
    def delete_changes(self, ids: list[int]) -> int: ...


class Access(Protocol):
    """May this service write (lars.dns.writeaccess.WriteAccess)?"""

    @property
    def known(self) -> bool: ...
    @property
    def writable(self) -> bool: ...
    def probe(self) -> bool | None: ...


# [dns] clean_changes: delete the RouteChange rows pushed, as the original does
CLEAN_MODES = ("auto", "on", "off")  # auto: when this service may write


class Audit(Protocol):
    def active_hold(self) -> AuditEntry | None: ...
    def record_hold(self, version: int, detail: str) -> int | None: ...
    def release_after(self, hold_id: int) -> AuditEntry | None: ...
    def record_apply(self, version: int, detail: str) -> None: ...
    def record_sql_edits(self, old: RouteTable, new: RouteTable, changed: set[Key]) -> int: ...


class StateStore(Protocol):
    """Where the guard state is kept (lars.dns.guardstore.GuardStateStore)."""

    def load(self) -> GuardState | None: ...
    def save(self, state: GuardState) -> None: ...


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
        state: StateStore | None = None,
        writer: str = "dns",
        db: str = "",
        access: Access | None = None,
        clean: str = "auto",
    ) -> None:
        if clean not in CLEAN_MODES:
            raise ValueError(f"clean must be one of {CLEAN_MODES}, not {clean!r}")
        self._store = store
        self._access = access  # None: may write (tests, the default)
        self._clean = clean
        # the newest RouteChange id read (pushed): a load reads only newer rows, so rows
        # that nobody deletes (a service that does not clean: issue 22) are pushed once
        self._change_after: int | None = None
        self.change_delete_failures = 0
        self._log_clean = RateLimitedLog(log, 60.0, level=logging.WARNING)
        self._publish = publish
        self._reload_interval = reload_interval
        self._policy = policy if policy is not None else GuardPolicy()
        self._audit = audit
        self._wall = wall
        self._table: RouteTable | None = None  # served
        self._loaded: RouteTable | None = None  # last loaded (served or held)
        # (version, change mark, registration mark) the next poll expects
        self._mark: tuple[int, int | None, int | None] | None = None
        self._loaded_at = float("-inf")
        self._held: RouteTable | None = None
        self._pending: set[Key] = set()  # change-row modules not pushed yet (while held)
        self._state = state
        self._writer = writer
        self._db = db
        self.baseline = Baseline()
        self._served_since = 0.0
        self._served_drained: tuple[Drained, ...] = ()  # RouteData rows drained when served
        self._held_drained: tuple[Drained, ...] = ()
        self._held_digest = ""
        self.hold: Hold | None = None
        self.polls = 0
        self.loads = 0
        self.pushed_modules = 0
        self.holds = 0
        self.sql_audit_rows = 0
        self.restored_state = False  # the first table was judged against a saved state
        self.baseline_hosts = 0  # the window's baseline after the last load

    @property
    def table(self) -> RouteTable | None:
        return self._table

    @property
    def served_since(self) -> float:
        """Unix time the served table (its hosts) began being served (0: nothing yet)."""
        return self._served_since

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
        if self._mark != (mark.version, mark.change_max, mark.instance_mark):
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
        snap = self._store.load(self._change_after)
        if self._access is not None and not self._access.known:
            self._access.probe()  # once, before any write (never raises)
        after = self._change_after
        if after is not None and (snap.change_max is None or snap.change_max < after):
            # the ids went back (RouteChange emptied by others, recreated, truncated):
            # read every row again (pushed twice at worst, never missed)
            self._change_after = None
            snap = self._store.load(None)
        new = build_table(snap)  # RouteData + passing registered instances (lars.dns.served)
        drained = drained_rows(snap)
        self._pending |= {(c.modid, c.cmdid) for c in snap.changes}
        served, previous = self._table, self._loaded
        pushed: set[Key] = set()
        served_diff: set[Key] | None = None  # changed_modules(served, new), once computed
        if served is None:  # the first load: nothing to push
            prior = self._state.load() if self._state is not None else None
            if prior is not None:
                self._start_from(prior, new, drained)
            else:
                active = self._audit.active_hold() if self._audit is not None else None
                if active is not None and active.version == new.version:
                    self._hold_at_start(new, active)
                else:
                    self._apply(new, set(), drained, ended="table changed")
                    self._pending.clear()
        else:
            verdict = self._judge(served, new)
            if verdict.hold:
                self._hold(served, new, verdict, drained)
                grown = with_additions(served, new)
                if grown is not None:  # registrations are never held (lars.dns.served)
                    pushed = self._serve_additions(served, grown)
            else:
                served_diff = changed_modules(served, new)
                pushed = served_diff | self._pending
                self._apply(new, pushed, drained, ended="table changed")
        deleted = bool(snap.changes) and self._delete_changes(snap)
        if snap.changes:  # rows deleted are gone (and SQLite may reuse their ids)
            self._change_after = None if deleted else max(c.id for c in snap.changes)
        if previous is not None and self._audit is not None:
            if served_diff is not None and previous is served:
                edited = served_diff  # the same two tables (nothing was held): diffed once
            else:
                edited = changed_modules(previous, new)
            self.sql_audit_rows += self._audit.record_sql_edits(previous, new, edited)
        self._measure_baseline()
        self.loads += 1
        self._loaded = new
        self._loaded_at = now
        # what the next poll reads if nothing changes: the rows left after our delete, or
        # every row when this service does not clean (it reloads when others clean)
        change = snap.change_mark if deleted else snap.change_max
        self._mark = (snap.version, change, snap.instance_mark)
        return pushed

    @property
    def cleans(self) -> bool:
        """Does this service delete the RouteChange rows it pushed ([dns] clean_changes)?"""
        if self._clean == "auto":
            return self._access is None or self._access.writable
        return self._clean == "on"

    def _delete_changes(self, snap: Snapshot) -> bool:
        """Delete the change rows read, when this service cleans; a failure is counted and
        logged (rate-limited), never fails the load: the rows are pushed already."""
        if not self.cleans:
            return False
        try:
            self._store.delete_changes([c.id for c in snap.changes])
        except StoreUnavailable as exc:
            self.change_delete_failures += 1
            self._log_clean("dns: cannot clean RouteChange (the rows stay): %s", exc)
            return False
        return True

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
        self.baseline.reset(counts(held))  # the operator accepted these counts
        self._apply(held, pushed, self._held_drained, ended=f"released by {actor}")

    def _measure_baseline(self) -> None:
        hold, window = self.hold, self._policy.window
        at = hold.since if hold is not None else self._wall()
        peaks = self.baseline.peaks(at, window) if window > 0 else self.baseline.current
        self.baseline_hosts = sum(peaks.values())

    def _judge(self, served: RouteTable, new: RouteTable) -> Verdict:
        hold = self.hold
        at = hold.since if hold is not None else self._wall()  # no ageing while held
        return judge(served, new, self._policy, self.baseline, at)

    def _apply(
        self,
        table: RouteTable,
        pushed: set[Key],
        drained: tuple[Drained, ...],
        ended: str = "",
    ) -> None:
        first = self._table is None
        previous = self._table
        self._publish(table, pushed)
        self._table = table
        self._served_drained = drained
        self._pending.clear()
        wall = self._wall()
        if previous is None or not previous.same_routes(table):
            self._served_since = wall
        self.baseline.serve(counts(table), wall)
        if not first:
            self.pushed_modules += len(pushed)
        hold = self.hold
        if hold is not None:
            self._held = self.hold = None
            self._held_drained = ()
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
        elif (
            previous is not None
            and previous.version == table.version
            and previous.same_routes(table)
            and previous.drained == table.drained
        ):
            return  # a periodic reload that found nothing new: the saved state stands
        self._save()

    def _serve_additions(self, served: RouteTable, grown: RouteTable) -> set[Key]:
        """While a table is held, serve and push the hosts it adds (nothing it removes):
        the hold goes on, judged against the grown table from now on."""
        pushed = changed_modules(served, grown)
        self._publish(grown, pushed)
        self._table = grown
        self.baseline.serve(counts(grown), self._wall())
        self.pushed_modules += len(pushed)
        log.info(
            "dns: the held table adds %d registered host(s) in %d module(s): serving them "
            "(registrations are never held); the rest stays held",
            grown.host_count - served.host_count,
            len(pushed),
        )
        self._save()
        return pushed

    def _start_from(self, prior: GuardState, new: RouteTable, drained: tuple[Drained, ...]) -> None:
        """The first load of a service that finds a saved guard state: judge `new` against
        the last good table and the saved baseline, as a running service would."""
        self.restored_state = True
        good = table_of(prior)
        self.baseline = Baseline(counts(good), prior.past)
        held = prior.held
        at = held.since if held is not None else self._wall()
        verdict = judge(good, new, self._policy, self.baseline, at)
        if not verdict.hold:
            if not good.same_routes(new):
                log.info(
                    "dns: the route table changed while this service was down (last good "
                    "version %d, %d hosts; now version %d, %d hosts): it passes the guard",
                    good.version,
                    good.host_count,
                    new.version,
                    new.host_count,
                )
            self._apply(new, set(), drained, ended="table changed")
            if held is not None and self._audit is not None:
                self._audit.record_apply(new.version, "table changed")
            return
        # Held: serve the last good table (nothing pushed: nobody is subscribed yet).
        self._publish(good, set())
        self._table = good
        self._served_drained = prior.drained
        self._served_since = prior.since
        digest = routes_digest(routes_of(new))
        if held is not None and held.digest == digest:  # the same hold, carried over
            self._held, self._held_digest, self._held_drained = new, digest, drained
            self.holds += 1
            self.hold = Hold.from_verdict(
                verdict,
                new.version,
                good.version,
                since=held.since,
                audit_id=held.audit_id,
                detail=held.detail,
            )
            log.error(
                "dns: route table version %d is still HELD (since %s: %s): serving the last "
                "good table, version %d, %d modules, %d hosts, until it is released (`lars "
                "route release`), restored (`lars route restore`) or the table changes",
                new.version,
                time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(held.since)),
                held.detail,
                good.version,
                len(good),
                good.host_count,
            )
            self._save()
        else:  # another table held (an edit made while down): the hold goes on
            self._hold(good, new, verdict, drained, since=held.since if held else None)

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

    def _hold(
        self,
        served: RouteTable,
        new: RouteTable,
        verdict: Verdict,
        drained: tuple[Drained, ...],
        since: float | None = None,
    ) -> None:
        held, hold = self._held, self.hold
        if held is not None and hold is not None and held.same_routes(new):
            # The same held table reloaded (a version-only bump): already logged and
            # recorded; only the version it is held at moves.
            self._held = new
            if hold.version != new.version:
                self.hold = dataclasses.replace(hold, version=new.version)
                self._save()
            return
        ratio = self._policy.max_drop_ratio
        detail = verdict.describe(ratio)
        audit_id = None
        if self._audit is not None:
            audit_id = self._audit.record_hold(new.version, detail)
        self._held = new
        self._held_drained = drained
        self._held_digest = routes_digest(routes_of(new))
        self.holds += 1
        if since is None:  # a held purge that goes on keeps its start: no ageing
            since = hold.since if hold is not None else self._wall()
        self.hold = Hold.from_verdict(
            verdict, new.version, served.version, since=since, audit_id=audit_id, detail=detail
        )
        what = {"empty": "empty table", "window": "loss over the guard window"}
        log.error(
            "dns: HOLDING route table version %d (%s): it would remove %d of %d hosts in "
            "%d modules: modules %d->%d, hosts %d->%d (max_drop_ratio %g%s). Still serving "
            "version %d; it is applied when the table changes again into one that passes, "
            "on `lars route release`, or `lars route restore` writes the served table back",
            new.version,
            what.get(verdict.reason, "mass removal"),
            verdict.removed_hosts,
            verdict.hosts_before,
            verdict.modules_losing,
            verdict.modules_before,
            verdict.modules_after,
            verdict.hosts_before,
            verdict.hosts_after,
            ratio,
            f"; {verdict.window_loss} of the window's {verdict.baseline_hosts} hosts lost"
            if verdict.reason == "window"
            else "",
            served.version,
        )
        self._save()

    def saved_state(self) -> GuardState | None:
        """The guard state as it is saved (None before a table is served)."""
        table = self._table
        if table is None:
            return None
        hold, held = self.hold, self._held
        info = None
        if hold is not None and held is not None:
            info = HeldInfo(
                version=hold.version,
                since=hold.since,
                audit_id=hold.audit_id,
                reason=hold.reason,
                detail=hold.detail,
                digest=self._held_digest or routes_digest(routes_of(held)),
                modules=len(held),
                hosts=held.host_count,
            )
        return GuardState(
            saved_at=self._wall(),
            writer=self._writer,
            version=table.version,
            since=self._served_since,
            routes=routes_of(table),
            drained=self._served_drained,
            past={k: tuple(v) for k, v in self.baseline.past().items()},
            held=info,
            db=self._db,
        )

    def _save(self) -> None:
        if self._state is None:
            return
        state = self.saved_state()
        if state is not None:
            self._state.save(state)


def routes_of(table: RouteTable) -> dict[Key, tuple[HostW, ...]]:
    """The table's hosts with their weights, as the guard state keeps them."""
    out: dict[Key, tuple[HostW, ...]] = {}
    for key in table:
        weights = table.weights(key)
        out[key] = tuple((ip, port, weights.get((ip, port), 1)) for ip, port in table.hosts(key))
    return out


def table_of(state: GuardState) -> RouteTable:
    """The served table a saved state describes."""
    routes = {
        key: tuple((ip, port) for ip, port, _ in hosts) for key, hosts in state.routes.items()
    }
    weights = {
        key: {(ip, port): w for ip, port, w in hosts if w != 1}
        for key, hosts in state.routes.items()
    }
    return RouteTable(state.version, routes, weights=weights, drained=len(state.drained))


def drained_rows(snap: Snapshot) -> tuple[Drained, ...]:
    """RouteData rows that a RouteHostMeta row drains (kept with the served table so a
    restore writes them back drained)."""
    off = [(m, c, ip, p, w) for m, c, ip, p, w, enabled in snap.meta if not enabled]
    if not off:
        return ()
    present = {(m, c, ip, p) for m, c, ip, p in snap.routes}
    return tuple(sorted(d for d in off if d[:4] in present))
