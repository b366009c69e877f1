"""The reporter's exporter: metric families, readiness and status from
`ReporterService.stats()` (plain values kept by the writers and the reactor).
Daemon-side only: imports prometheus_client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from lars.obs.families import (
    counter,
    gauge,
    histogram,
    labelled_counter,
    labelled_gauge,
    server_families,
)
from lars.obs.hist import SIZE_BUCKETS, Buckets
from lars.obs.listen import MetricsConfig
from lars.obs.ready import Readiness, reporter_ready, with_threads
from lars.obs.registry import new_registry
from lars.obs.server import MetricsServer
from lars.reporter.service import ReporterService, ReporterStats

__all__ = ["ReporterCollector", "reporter_metrics_server", "reporter_readiness", "reporter_status"]

P = "lars_reporter"
_NO_DURATIONS = Buckets().snapshot()
_NO_SIZES = Buckets(SIZE_BUCKETS).snapshot()

Clock = Callable[[], float]


def _db_up(s: ReporterStats) -> bool:
    return s.db_available


def _last_commit_age(s: ReporterStats, now: float) -> float | None:
    commits = [w.last_commit for w in s.writers if w.last_commit is not None]
    return max(0.0, now - max(commits)) if commits else None


class ReporterCollector(Collector):
    def __init__(self, reporter: ReporterService, *, clock: Clock = time.monotonic) -> None:
        self._reporter = reporter
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        s = self._reporter.stats()
        ws = s.writers
        yield counter(f"{P}_reports", "ReportStatusRequests parsed.", s.reports)
        yield counter(f"{P}_rows_received", "Rows handed to the writers.", s.received)
        yield counter(f"{P}_rows_written", "Rows upserted and committed.", s.written)
        yield counter(f"{P}_rows_coalesced",
                      "Rows replaced by a newer row of the same key before writing.",
                      s.coalesced)  # fmt: skip
        yield labelled_counter(
            f"{P}_rows_dropped", "Rows dropped, by reason.", "reason",
            {
                "invalid": s.invalid,
                "overflow": s.overflow,
                "rejected": sum(w.failed for w in ws),
                "lost": sum(w.lost for w in ws),
            },
        )  # fmt: skip
        yield counter(f"{P}_batches", "Transactions committed.", s.batches)
        yield counter(f"{P}_database_errors", "Failed write attempts.", s.db_errors)
        yield gauge(f"{P}_database_up", "The database takes writes: no write failed or hangs "
                    "(0/1).", int(_db_up(s)))  # fmt: skip
        yield counter(f"{P}_database_outages", "Database outages seen.", s.db_outages)
        yield labelled_gauge(f"{P}_queue_depth", "Rows waiting per writer.", "writer",
                             {str(w.index): w.pending for w in ws})  # fmt: skip
        yield histogram(f"{P}_batch_rows", "Rows per committed batch.",
                        [({"writer": str(w.index)}, w.batch_sizes or _NO_SIZES)
                         for w in ws])  # fmt: skip
        yield histogram(f"{P}_commit_duration_seconds", "Duration of each committed batch.",
                        [({"writer": str(w.index)}, w.commit_seconds or _NO_DURATIONS)
                         for w in ws])  # fmt: skip
        age = _last_commit_age(s, self._clock())
        if age is not None:
            yield gauge(f"{P}_last_commit_age_seconds",
                        "Seconds since the most recent committed batch.", age)  # fmt: skip
        yield from server_families(P, s.server)


def _ready(s: ReporterStats, max_pending: int) -> Readiness:
    verdict = reporter_ready(
        db_up=_db_up(s),
        queue_depth=s.queue_depth,
        max_pending=max_pending,
        db_reached=s.db_reached,
        db_cause=s.db_cause,
    )
    dead = [f.describe() for f in s.threads if f.dead]
    recent = [f.describe() for f in s.threads if not f.dead and f.recent]
    return with_threads(verdict, dead, recent)


def reporter_readiness(reporter: ReporterService) -> Readiness:
    return _ready(reporter.stats(), reporter.config.max_pending)


def reporter_status(reporter: ReporterService, *, clock: Clock = time.monotonic) -> dict[str, Any]:
    s = reporter.stats()
    age = _last_commit_age(s, clock())
    return {
        "daemon": "reporter",
        "ready": _ready(s, reporter.config.max_pending).as_dict(),
        "port": reporter.port,
        "connections": s.connections,
        "received": s.received,
        "written": s.written,
        "dropped": s.dropped,
        "queue_depth": list(s.queue_depth),
        "database_up": _db_up(s),
        "database_error": s.db_cause,
        "last_commit_age": None if age is None else round(age, 3),
        "threads": [f.as_dict() for f in s.threads],
    }


def reporter_metrics_server(
    reporter: ReporterService, config: MetricsConfig
) -> MetricsServer | None:
    if config.listen is None:
        return None
    registry = new_registry("reporter")
    registry.register(ReporterCollector(reporter))
    return MetricsServer(
        config.listen,
        registry,
        daemon="reporter",
        ready=lambda: reporter_readiness(reporter),
        status=lambda: reporter_status(reporter),
        threads=reporter.threads,  # a dead listener thread is the daemon's
    )
