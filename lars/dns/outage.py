"""OutageLog: a database outage is logged once with its cause, and once on recovery.

Fed by the poller thread (a call failed or succeeded) and by the watchdog thread (a call
ran past its deadline), hence the lock. The first report of an outage gives its cause
and its start; later failures of the same outage only update `last_error`; the next
success logs the recovery with the outage's duration.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["OutageLog"]

log = logging.getLogger(__name__)


class OutageLog:
    """Logs the first failure of an outage (with its cause) and the recovery, once each."""

    def __init__(self, what: str, logger: logging.Logger = log) -> None:
        self._what = what
        self._log = logger
        self._lock = threading.Lock()
        self.failing_since: float | None = None
        self.outages = 0
        self.last_error = ""

    def failed(self, exc: BaseException, now: float) -> None:
        with self._lock:
            self.last_error = str(exc)
            if self.failing_since is not None:
                return
            self.failing_since = now
            self.outages += 1
        self._log.warning(
            "%s: database unavailable, serving the last table and retrying: %s",
            self._what,
            exc,
        )

    def succeeded(self, now: float) -> None:
        with self._lock:
            since, self.failing_since = self.failing_since, None
        if since is not None:
            self._log.warning(
                "%s: database reachable again after %.1fs", self._what, max(0.0, now - since)
            )
