"""A watchdog on the poller's database calls: an outage is noticed whatever the socket does.

Socket timeouts alone do not bound a call: a pool's pre-ping, a reconnect and the query
each get their own timeout, and a driver may retry. So the poller announces each call
(`Watch.running(what, deadline)`) and `Watchdog`, a thread of its own, reports a call
still running past its deadline to the OutageLog as the outage's cause, once per call.
The call itself is not interrupted (it ends by its socket timeout or when the database
answers); the recovery is logged when a later call succeeds.

`Watch` is the sans-I/O core (time comes in as `now`); `Watchdog` owns the thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lars.dns.outage import OutageLog
from lars.threads import ThreadHealth

__all__ = ["Overdue", "Watch", "Watchdog"]


class Overdue(Exception):
    """The cause an OutageLog records for a call past its deadline."""


class Watch:
    """The one call in progress (the poller makes one at a time) and its deadline."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._what = ""
        self._started = 0.0
        self._deadline: float | None = None  # absolute; None: no call in progress
        self._reported = False

    def begin(self, what: str, timeout: float, now: float) -> None:
        with self._lock:
            self._what, self._started = what, now
            self._deadline, self._reported = now + timeout, False

    def end(self) -> None:
        with self._lock:
            self._deadline = None

    @contextmanager
    def running(self, what: str, timeout: float) -> Iterator[None]:
        self.begin(what, timeout, self._clock())
        try:
            yield
        finally:
            self.end()

    def overdue(self, now: float) -> tuple[Overdue, float] | None:
        """The cause and start time of a call past its deadline, once per call."""
        with self._lock:
            if self._deadline is None or self._reported or now < self._deadline:
                return None
            self._reported = True
            elapsed = now - self._started
            cause = Overdue(
                f"{self._what} has not returned after {elapsed:.1f}s (deadline "
                f"{self._deadline - self._started:.1f}s): the database or the network to it "
                "does not answer"
            )
            return cause, self._started


class Watchdog:
    """Checks a Watch every `interval` seconds; owns its thread (start/stop)."""

    def __init__(
        self,
        watch: Watch,
        outage: OutageLog,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "dns-watchdog",
        health: ThreadHealth | None = None,
    ) -> None:
        self._watch = watch
        self._outage = outage
        self._interval = interval
        self._clock = clock
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.health = health or ThreadHealth()

    def start(self) -> None:
        if self._thread is not None:
            return
        # supervised: a failure is logged and the loop restarted (lars.threads)
        target = self.health.target(self._name, self._run, stopping=self._stop.is_set, restart=True)
        self._thread = threading.Thread(target=target, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def check(self) -> bool:
        """One look; True when it reported an outage."""
        found = self._watch.overdue(self._clock())
        if found is None:
            return False
        cause, started = found
        self._outage.failed(cause, started)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check()
