"""DbHealth: whether the reporter's database answers, judged from the writers' writes.

Every writer brackets each write (connect, pre-ping, upsert, commit) with `begin()` and
`end()`. The database is *down* from the first failed write (cause: the error), or from
the moment a write has run `stall_after` seconds without an answer, which `check()`
notices whatever the socket does (a frozen server or a partition answers nothing and
closes nothing; the socket timeout that finally aborts the write is much longer). It is
*up* again once a write succeeds while no writer is failing or stalled. Each transition
is returned once, as a HealthEvent for the caller to log: one line for the outage with
its cause, one for the recovery with its duration. Time comes in as `now`; the lock
makes it safe to call from the writer threads and the watchdog's loop.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

__all__ = ["DEFAULT_STALL_AFTER", "DbHealth", "HealthEvent", "log_event"]

log = logging.getLogger(__name__)

DEFAULT_STALL_AFTER = 2.0  # a batch upsert of 1,000 rows takes tens of milliseconds


@dataclass(frozen=True, slots=True)
class HealthEvent:
    down: bool  # True: an outage began; False: it ended
    cause: str  # why it is down (outage) or what ended it (recovery)
    duration: float = 0.0  # seconds the outage lasted (recovery only)


class DbHealth:
    def __init__(self, writers: int, *, stall_after: float = DEFAULT_STALL_AFTER) -> None:
        self.stall_after = stall_after
        self._lock = threading.Lock()
        self._busy: list[float | None] = [None] * writers  # start of each writer's write
        self._failing: set[int] = set()
        self.down_since: float | None = None
        self.cause = ""
        self.outages = 0
        self.reached = True  # False from down_at_start() until a write or probe succeeds

    @property
    def available(self) -> bool:
        return self.down_since is None

    def down_at_start(self, now: float, cause: str) -> None:
        """The database did not answer at start (the service logged it): down, and not
        reached yet, until a writer's write or probe succeeds."""
        with self._lock:
            self.reached = False
            self._down(now, cause)

    def begin(self, index: int, now: float) -> None:
        with self._lock:
            self._busy[index] = now

    def end(self, index: int, now: float, error: str | None = None) -> HealthEvent | None:
        """Writer `index` finished a write: `error` is None when it committed (or its
        rows were rejected as invalid: the database answered)."""
        with self._lock:
            self._busy[index] = None
            if error is not None:
                self._failing.add(index)
                return self._down(now, f"writer {index}: {error}")
            self._failing.discard(index)
            self.reached = True
            if self.down_since is None or self._failing or self._stalled(now):
                return None
            duration = now - self.down_since
            self.down_since = None
            return HealthEvent(False, f"writer {index} wrote again", duration)

    def check(self, now: float) -> HealthEvent | None:
        """The watchdog: a write past `stall_after` makes the database down."""
        with self._lock:
            for index, started in enumerate(self._busy):
                if started is not None and now - started >= self.stall_after:
                    return self._down(
                        started,
                        f"writer {index}: no answer to a write for {now - started:.1f}s "
                        "(database frozen or unreachable)",
                    )
        return None

    def _stalled(self, now: float) -> bool:
        return any(t is not None and now - t >= self.stall_after for t in self._busy)

    def _down(self, since: float, cause: str) -> HealthEvent | None:
        if self.down_since is not None:
            return None
        self.down_since = since
        self.cause = cause
        self.outages += 1
        return HealthEvent(True, cause)


def log_event(event: HealthEvent | None) -> None:
    """The one line per transition."""
    if event is None:
        return
    if event.down:
        log.error(
            "database OUTAGE: %s; reports are kept in memory (latest value per key) and "
            "written when it answers again",
            event.cause,
        )
    else:
        log.warning(
            "database back after a %.1fs outage (%s); writing the rows kept meanwhile",
            event.duration,
            event.cause,
        )
