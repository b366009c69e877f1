"""A small histogram of rare events (reloads, pushes, commits), sans-I/O.

Durations that happen a few times a second at most do not need the library's own
objects: the owner calls `observe(value)` and the exporter reads `snapshot()` at scrape
time. A lock keeps count, sum and buckets consistent with each other; it is taken once
per event and once per scrape, never per datagram.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

__all__ = ["COMMIT_BUCKETS", "DURATION_BUCKETS", "SIZE_BUCKETS", "BucketSnapshot", "Buckets"]

# Seconds: from a sub-millisecond push to a reload that took half a minute.
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
COMMIT_BUCKETS = DURATION_BUCKETS
# Rows per batch (the reporter's batch_rows defaults to 1000).
SIZE_BUCKETS = (1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0)


@dataclass(frozen=True, slots=True)
class BucketSnapshot:
    bounds: tuple[float, ...]  # upper bounds, ascending; +Inf is implied
    cumulative: tuple[int, ...]  # observations <= each bound, then the total (+Inf)
    total: float  # sum of the observed values

    @property
    def count(self) -> int:
        return self.cumulative[-1]


class Buckets:
    """Counts observations into fixed upper bounds (`le`, inclusive like Prometheus)."""

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("bounds must be ascending and distinct")
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(bounds) + 1)  # the last one is past every bound
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    def snapshot(self) -> BucketSnapshot:
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        cumulative: list[int] = []
        running = 0
        for n in counts:
            running += n
            cumulative.append(running)
        return BucketSnapshot(self.bounds, tuple(cumulative), total)
