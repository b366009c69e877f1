"""PollerThread: the thread that drives a Poller, and its watchdog.

Every `interval` the poller asks its cheap question (under the poll deadline: about a
second, the poll engine's socket timeouts); a change is loaded at once (under the
longer reload deadline). A database outage never stops the service: the last table
keeps being served, the outage is logged once with its cause (by the watchdog when a
call hangs, or by the failing call), polls are retried with a short capped backoff so
an edit made right after the database returns is seen within about a second, and the
recovery is logged with its duration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lars.dns.guard import Hold
from lars.dns.outage import OutageLog
from lars.dns.poller import Poller, Step
from lars.dns.watchdog import Watch, Watchdog
from lars.errors import StoreUnavailable
from lars.obs.hist import Buckets, BucketSnapshot
from lars.ratelog import RateLimitedLog
from lars.reactor.backoff import BackoffFactory, backoff
from lars.threads import ThreadHealth

__all__ = ["PollerStats", "PollerThread"]

log = logging.getLogger(__name__)

DEFAULT_POLL_DEADLINE = 1.0
DEFAULT_RELOAD_DEADLINE = 10.0


@dataclass(frozen=True, slots=True)
class PollerStats:
    polls: int
    loads: int
    pushed_modules: int
    outages: int
    in_outage: bool
    last_error: str
    holds: int  # tables held since start
    held: Hold | None  # the table held now
    sql_audit_rows: int  # actor 'sql' rows written for plain-SQL edits
    poll_failures: int = 0  # polls and loads that failed
    last_success: float | None = None  # clock time of the last successful poll or load
    reload_seconds: BucketSnapshot | None = None  # duration of each table load or release


class PollerThread:
    """Owns the polling thread and its watchdog. `first_load()` blocks until a table is
    loaded (or stop)."""

    def __init__(
        self,
        poller: Poller,
        *,
        interval: float,
        poll_deadline: float = DEFAULT_POLL_DEADLINE,
        reload_deadline: float = DEFAULT_RELOAD_DEADLINE,
        backoff_factory: BackoffFactory = backoff,
        clock: Callable[[], float] = time.monotonic,
        name: str = "dns-poller",
        health: ThreadHealth | None = None,
    ) -> None:
        self.health = health or ThreadHealth()
        self._poller = poller
        self._interval = interval
        self._poll_deadline = poll_deadline
        self._reload_deadline = reload_deadline
        self._backoff_factory = backoff_factory
        self._clock = clock
        self._name = name
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop and by nudge: the wait ends at once
        self._thread: threading.Thread | None = None
        self.outage = OutageLog(name)
        self._watch = Watch(clock)
        self._watchdog = Watchdog(
            self._watch,
            self.outage,
            interval=min(interval, poll_deadline / 4),
            clock=clock,
            name=f"{name}-watchdog",
            health=self.health,
        )
        self._log_bug = RateLimitedLog(log, 60.0, level=logging.ERROR)
        self.poll_failures = 0
        self.last_success: float | None = None
        self.reload_seconds = Buckets()

    def first_load(self) -> bool:
        """Retry the initial load with backoff until a table is served (True) or stop()
        (False). A table held before this start is polled for its release or a change."""
        self._watchdog.start()
        delays = self._backoff_factory()
        while not self._stop.is_set():
            step = self._load_step if self._poller.hold is None else self._poll_step
            ok = self._attempt(step)
            if ok and self._poller.table is not None:
                return True
            self._stop.wait(self._interval if ok else next(delays))
        return False

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("poller already started")
        self._watchdog.start()
        # supervised: an exception outside a poll attempt (the cadence arithmetic, the
        # wait) is logged and the loop restarted, never a silently dead poller
        target = self.health.target(self._name, self._run, stopping=self._stop.is_set, restart=True)
        self._thread = threading.Thread(target=target, name=self._name, daemon=True)
        self._thread.start()

    def set_interval(self, interval: float) -> None:
        """A new poll interval (SIGHUP), from any thread: used from the next poll on."""
        self._interval = interval

    def request_stop(self) -> None:
        """Ask the thread (and a pending first_load) to end; only sets an event."""
        self._stop.set()
        self._wake.set()

    def nudge(self) -> None:
        """Poll now instead of at the next tick (this service just wrote a registration
        change: its own agents get it without waiting for the tick); any thread."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._watchdog.stop()

    def stats(self) -> PollerStats:
        p = self._poller
        return PollerStats(
            polls=p.polls,
            loads=p.loads,
            pushed_modules=p.pushed_modules,
            outages=self.outage.outages,
            in_outage=self.outage.failing_since is not None,
            last_error=self.outage.last_error,
            holds=p.holds,
            held=p.hold,
            sql_audit_rows=p.sql_audit_rows,
            poll_failures=self.poll_failures,
            last_success=self.last_success,
            reload_seconds=self.reload_seconds.snapshot(),
        )

    def _load_step(self, now: float) -> None:
        with self._watch.running("the route table reload", self._reload_deadline):
            self._poller.load(now)
        self.reload_seconds.observe(self._clock() - now)

    def _poll_step(self, now: float) -> None:
        with self._watch.running("the version poll", self._poll_deadline):
            step = self._poller.check(now)
        if step is not Step.NOTHING:
            started = self._clock()
            with self._watch.running(f"the route table {step.value}", self._reload_deadline):
                self._poller.run(step, started)
            self.reload_seconds.observe(self._clock() - started)

    def _attempt(self, step: Callable[[float], object]) -> bool:
        now = self._clock()
        try:
            step(now)
        except StoreUnavailable as exc:
            self.poll_failures += 1
            self.outage.failed(exc, now)
            return False
        except Exception:  # a bug must not end the service: log it and keep polling
            self.poll_failures += 1
            self._log_bug("%s: poll failed unexpectedly", self._name, exc_info=True)
            return False
        self.last_success = self._clock()
        self.outage.succeeded(self.last_success)
        return True

    def _run(self) -> None:
        # Polls start on a fixed cadence (every `interval` from the previous start), so the
        # work after a push (deleting change rows, audit rows) does not delay the next
        # poll: an edit waits at most one interval plus the poll itself.
        delays = self._backoff_factory()
        delay = self._interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                break
            started = self._clock()
            if self._attempt(self._poll_step):
                delays = self._backoff_factory()
                delay = max(0.0, started + self._interval - self._clock())
            else:
                delay = max(min(next(delays), 30.0), 0.0)
