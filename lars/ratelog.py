"""Rate-limited logging: bad input is logged, but a flood of it cannot flood the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Logs at most one line per `interval` seconds and says how many were suppressed."""

    __slots__ = ("_clock", "_interval", "_last", "_level", "_logger", "_suppressed")

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 5.0,
        *,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._level = level
        self._clock = clock
        self._last = float("-inf")
        self._suppressed = 0

    def __call__(self, msg: str, *args: object, exc_info: bool = False) -> bool:
        """Log now if the interval has passed; return whether a line was written."""
        now = self._clock()
        if now - self._last < self._interval:
            self._suppressed += 1
            return False
        if self._suppressed:
            msg += " (%d similar suppressed)"
            args = (*args, self._suppressed)
        self._last = now
        self._suppressed = 0
        self._logger.log(self._level, msg, *args, exc_info=exc_info)
        return True
