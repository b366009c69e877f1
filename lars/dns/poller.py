"""The version poller: reload the route table when the version moves, push what changed.

`Poller` does one poll at a time with the clock value it is given (testable with a fake
store and fake time); `PollerThread` owns the thread that calls it every poll interval.
A database outage never stops the service: the last table keeps being served, the outage
is logged once with its cause, polls are retried with backoff, and the recovery is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lars.dns.store import RouteStore
from lars.dns.table import Key, RouteTable, changed_modules
from lars.errors import StoreUnavailable
from lars.ratelog import RateLimitedLog
from lars.reactor.backoff import BackoffFactory, backoff

__all__ = ["OutageLog", "Poller", "PollerStats", "PollerThread", "Publish"]

log = logging.getLogger(__name__)

# Called with the new table and the modules to push, after which the table is live.
Publish = Callable[[RouteTable, set[Key]], None]


class Poller:
    """Polls the store; on a new version (or every reload_interval) reloads and publishes.

    Pushed modules are those named by the RouteChange rows read (version <= the new
    version) plus those whose hosts differ between the old and new table, so a DBA who
    bumps the version but forgets RouteChange still reaches subscribers. Exactly the
    change rows read are deleted afterwards.
    """

    def __init__(self, store: RouteStore, publish: Publish, *, reload_interval: float) -> None:
        self._store = store
        self._publish = publish
        self._reload_interval = reload_interval
        self._table: RouteTable | None = None
        self._loaded_at = float("-inf")
        self.loads = 0
        self.pushed_modules = 0

    @property
    def table(self) -> RouteTable | None:
        return self._table

    def load(self, now: float) -> set[Key]:
        """Load a snapshot, publish it, delete its change rows; return the pushed modules."""
        snap = self._store.load()
        new = RouteTable.from_rows(snap.version, snap.routes)
        old = self._table
        changed = {(c.modid, c.cmdid) for c in snap.changes}
        if old is not None:
            changed |= changed_modules(old, new)
        self._table = new
        self._loaded_at = now
        self.loads += 1
        self._publish(new, changed if old is not None else set())
        if old is not None:
            self.pushed_modules += len(changed)
        if snap.changes:
            self._store.delete_changes([c.id for c in snap.changes])
        return changed

    def poll(self, now: float) -> bool:
        """One poll; True when the table was reloaded. Raises StoreUnavailable."""
        table = self._table
        due = now - self._loaded_at >= self._reload_interval
        if table is not None and not due and self._store.read_version() == table.version:
            return False
        self.load(now)
        return True


class OutageLog:
    """Logs the first failure of an outage (with its cause) and the recovery, once each."""

    def __init__(self, what: str, logger: logging.Logger = log) -> None:
        self._what = what
        self._log = logger
        self.failing_since: float | None = None
        self.outages = 0
        self.last_error = ""

    def failed(self, exc: BaseException, now: float) -> None:
        self.last_error = str(exc)
        if self.failing_since is None:
            self.failing_since = now
            self.outages += 1
            self._log.warning(
                "%s: database unavailable, serving the last table and retrying: %s",
                self._what,
                exc,
            )

    def succeeded(self, now: float) -> None:
        if self.failing_since is not None:
            self._log.warning(
                "%s: database reachable again after %.1fs", self._what, now - self.failing_since
            )
            self.failing_since = None


@dataclass(frozen=True, slots=True)
class PollerStats:
    loads: int
    pushed_modules: int
    outages: int
    in_outage: bool
    last_error: str


class PollerThread:
    """Owns the polling thread. `first_load()` blocks until a table is loaded (or stop)."""

    def __init__(
        self,
        poller: Poller,
        *,
        interval: float,
        backoff_factory: BackoffFactory = backoff,
        clock: Callable[[], float] = time.monotonic,
        name: str = "dns-poller",
    ) -> None:
        self._poller = poller
        self._interval = interval
        self._backoff_factory = backoff_factory
        self._clock = clock
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.outage = OutageLog(name)
        self._log_bug = RateLimitedLog(log, 60.0, level=logging.ERROR)

    def first_load(self) -> bool:
        """Retry the initial load with backoff until it succeeds (True) or stop() (False)."""
        delays = self._backoff_factory()
        while not self._stop.is_set():
            if self._attempt(self._poller.load):
                return True
            self._stop.wait(next(delays))
        return False

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("poller already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread (and a pending first_load) to end; only sets an event."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def stats(self) -> PollerStats:
        return PollerStats(
            loads=self._poller.loads,
            pushed_modules=self._poller.pushed_modules,
            outages=self.outage.outages,
            in_outage=self.outage.failing_since is not None,
            last_error=self.outage.last_error,
        )

    def _attempt(self, step: Callable[[float], object]) -> bool:
        now = self._clock()
        try:
            step(now)
        except StoreUnavailable as exc:
            self.outage.failed(exc, now)
            return False
        except Exception:  # a bug must not end the service: log it and keep polling
            self._log_bug("%s: poll failed unexpectedly", self._name, exc_info=True)
            return False
        self.outage.succeeded(now)
        return True

    def _run(self) -> None:
        delays = self._backoff_factory()
        delay = self._interval
        while not self._stop.wait(delay):
            if self._attempt(self._poller.poll):
                delays = self._backoff_factory()
                delay = self._interval
            else:
                delay = max(min(next(delays), 30.0), 0.0)
