"""Registry: the route service's registration writer thread (issue 20).

Reactor workers hand it each agent's InstanceSync (`submit`, under a short lock: a sync
arrives every lease/3 s per agent, far from any hot path) and answer the agent at once
with the lease; the thread writes what the LeaseBook says is due through InstanceStore:
changes at once (coalesced while a write is in flight, so a storm of 1,000 registrations
in a second is a few transactions), renewals at most once a second for every agent
together, and expiry of leases that ran out. Every write raises the mark that all route
services poll, so the change is served by all of them within a poll.

A sync is acknowledged before it is written: the agent resends its full set every lease/3
s, so a write lost to a crash or an outage is redone by the next renewal; while the
database is away the newest set per agent waits in memory (bounded) and is written when
it returns. Failed writes are retried with a capped backoff, logged once per outage.

`accepting()` is the capability the replies advertise (GetRouteResponse.registrations):
true while this service may write (not configured read-only) and the tables exist. A
route service that cannot write never asks agents to send it registrations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lars.dns.instances import Instance
from lars.dns.leases import Batch, LeaseBook
from lars.dns.regstore import InstanceStore, WriteResult
from lars.errors import StoreUnavailable
from lars.ratelog import RateLimitedLog
from lars.threads import ThreadHealth

__all__ = ["Registry", "RegistryStats"]

log = logging.getLogger(__name__)

_RETRY_MAX = 1.0
_PRESENCE_RECHECK = 30.0


@dataclass(frozen=True, slots=True)
class RegistryStats:
    accepting: bool
    syncs: int  # InstanceSync messages taken
    refused: int  # syncs refused (bad agent id, too many agents pending)
    invalid_instances: int  # instances left out of a sync (bad ids, port, check text)
    writes: int  # transactions committed
    write_failures: int
    registered: int
    deregistered: int
    expired: int  # instances whose lease ran out (expired by this service)
    flaps: int  # check state changes (passing <-> failing)
    renewed: int  # rows renewed
    pending: int  # agents waiting for a write


class Registry:
    """Owns the LeaseBook and the thread writing it; start()/stop()."""

    def __init__(
        self,
        store: InstanceStore,
        *,
        lease: float,
        writable: bool = True,
        may_write: Callable[[], bool] = lambda: True,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        book: LeaseBook | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._on_change = on_change  # after a write that changed something (poll now)
        self.lease = lease
        self._writable = writable
        # the write engine may be written (lars.dns.writeaccess; False on a replica
        # without --write-db: registrations are then not accepted nor advertised)
        self._may_write = may_write
        self._wall = wall
        self._clock = clock
        self._book = book if book is not None else LeaseBook(lease=lease)
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._present: bool | None = None  # the tables exist (None: not asked yet)
        self._present_checked = -_PRESENCE_RECHECK
        self._log_fail = RateLimitedLog(log, 30.0)
        self._log_flap = RateLimitedLog(log, 60.0, level=logging.INFO)
        self._failing = False
        self.syncs = self.refused = self.invalid_instances = 0
        self.writes = self.write_failures = 0
        self.registered = self.deregistered = self.expired = self.flaps = self.renewed = 0

    # any thread

    @property
    def writable(self) -> bool:
        """This service may write registrations ([dns] registrations); whether replies
        advertise it also needs the tables, which the route table's load checks), and
        its write engine may be written (lars.dns.writeaccess)."""
        return self._writable and self._may_write()

    def accepting(self) -> bool:
        """Take syncs: writable and the tables exist (or were not asked about yet: the
        thread asks first thing, and a sync taken meanwhile waits for it)."""
        return self.writable and self._present is not False

    def submit(self, agent: str, instances: Iterable[Instance]) -> bool:
        """Take an agent's full set (worker threads). False: refused, not recorded."""
        with self._cond:
            ok = self._book.offer(agent, instances)
            self.syncs += 1
            if not ok:
                self.refused += 1
            elif self._book.has_changes():
                self._cond.notify()
        return ok

    def count_refused(self, invalid_instances: int = 0, refused: int = 0) -> None:
        with self._cond:
            self.invalid_instances += invalid_instances
            self.refused += refused

    def stats(self) -> RegistryStats:
        with self._cond:
            pending = self._book.pending
        return RegistryStats(
            accepting=self.accepting(),
            syncs=self.syncs,
            refused=self.refused,
            invalid_instances=self.invalid_instances,
            writes=self.writes,
            write_failures=self.write_failures,
            registered=self.registered,
            deregistered=self.deregistered,
            expired=self.expired,
            flaps=self.flaps,
            renewed=self.renewed,
            pending=pending,
        )

    # lifecycle

    def check_presence(self) -> bool:
        """Ask the database whether the tables exist (first thing in the thread, then
        every 30 s until they do). A database that cannot be asked leaves the answer
        as it was (not asked yet: syncs are still taken, and written once it answers)."""
        if not self.writable:
            return False
        try:
            self._present = self._store.available()
        except StoreUnavailable as exc:
            self._log_fail("dns: registrations: cannot check the tables: %s", exc)
        self._present_checked = self._clock()
        return bool(self._present)

    def start(self, health: ThreadHealth | None = None) -> None:
        """Start the writer thread (supervised by `health`: a bug restarts it, logged)."""
        if self._thread is not None:
            raise RuntimeError("registry already started")
        if not self._writable:
            log.info("dns: registrations = false: registrations are not accepted or advertised")
            return
        health = health if health is not None else ThreadHealth()
        target = health.target("dns-registry", self._run, stopping=self._stopping, restart=True)
        self._thread = threading.Thread(target=target, name="dns-registry", daemon=True)
        self._thread.start()

    def _stopping(self) -> bool:
        return self._stop

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after one last attempt to write what is pending."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # the thread

    def flush(self) -> WriteResult | None:
        """Write whatever is due now (the thread's step; tests call it directly).
        None: nothing due or the write failed (then retried later)."""
        now = self._clock()
        if not self._present and (
            now - self._present_checked < _PRESENCE_RECHECK or not self.check_presence()
        ):
            return None
        with self._cond:
            batch = self._book.take(now)
        if not batch:
            return None
        try:
            result = self._store.write(batch, int(self._wall()), self.lease)
        except StoreUnavailable as exc:
            with self._cond:
                self._book.failed(batch)
                self.write_failures += 1
            if not self._failing:
                log.warning("dns: registrations not written, retrying: %s", exc)
            self._failing = True
            return None
        if self._failing:
            log.info("dns: registrations written again")
            self._failing = False
        self._done(batch, result)
        if result.changed and self._on_change is not None:
            self._on_change()
        return result

    def _done(self, batch: Batch, result: WriteResult) -> None:
        with self._cond:
            expected = self._book.expected_rows(batch.renewals - batch.changes.keys())
            self._book.done(batch, renewed_all=result.renewed >= expected)
            self._book.forget(result.expired_agents)
            self.writes += 1
            self.registered += result.registered
            self.deregistered += result.deregistered
            self.expired += result.expired
            self.flaps += result.flaps
            self.renewed += result.renewed
        if result.flaps:  # check flaps: metrics and this rate-limited line, not RouteAudit
            self._log_flap(
                "dns: %d registered instance(s) changed check state (passing <-> failing); "
                "lars_dns_check_flaps_total counts them",
                result.flaps,
            )
        if result.expired:
            log.warning(
                "dns: %d registered instance(s) of %d agent(s) expired: no renewal for %g s",
                result.expired,
                len(result.expired_agents),
                self.lease,
            )

    def _run(self) -> None:
        if self._present is None:
            self.check_presence()  # here, not in start(): a hung database must not block it
        delay = 0.0
        while True:
            with self._cond:
                if self._stop:
                    break
                wait = max(delay, self._book.next_due(self._clock()))
                if wait > 0:
                    self._cond.wait(wait)
                if self._stop:
                    break
            try:
                self.flush()
                ok = not self._failing
            except Exception:  # a bug must not end registrations: log and keep going
                self._log_fail("dns: registration write failed unexpectedly", exc_info=True)
                ok = False
            if not self._present:
                delay = _RETRY_MAX  # no tables (yet): nothing can be written
            else:
                delay = 0.0 if ok else min(_RETRY_MAX, max(0.05, delay * 2))
        try:  # one last attempt: changes taken at stop are written if the database is up
            with self._cond:
                has_work = self._book.has_changes()
            if has_work and self._present:
                self.flush()
        except Exception:
            log.warning("dns: pending registrations not written at stop", exc_info=True)
