"""The reporter daemon: ReportStatusRequest over TCP -> ring -> writer threads -> table.

Built in main from a frozen ReporterConfig; `start()` returns once listening, `stop()`
stops reading, then flushes every pending row before the writers end. Handlers run on
the reactor's loops and only hand rows to the writers' buffers, so the network side
never waits for the database. A watchdog on the master loop asks the writers' shared
DbHealth every WATCH_INTERVAL whether a write hangs, so a frozen database is logged
within about stall_after + WATCH_INTERVAL (2.5 s by default) whatever its sockets do.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from lars.dbengine import init_schema, make_engine
from lars.errors import StoreUnavailable
from lars.protocol import MsgId
from lars.ratelog import RateLimitedLog
from lars.reactor import LoopThread, Router, ServerStats, TcpServer
from lars.reload import ReloadResult, diff, split
from lars.reporter.config import DEFAULT_PORT, ReporterConfig
from lars.reporter.health import DbHealth, log_event
from lars.reporter.intake import parse_report, rows_from_report
from lars.reporter.ring import HashRing
from lars.reporter.writer import Writer, WriterStats
from lars.threads import ThreadFailure, ThreadHealth

__all__ = ["DEFAULT_PORT", "ReporterConfig", "ReporterService", "ReporterStats"]

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5  # seconds between the watchdog's looks at the writers


@dataclass(frozen=True, slots=True)
class ReporterStats:
    """A snapshot of the reporter's counters (rows unless said otherwise)."""

    reports: int  # ReportStatusRequest messages parsed
    received: int  # rows handed to the writers
    written: int
    batches: int
    coalesced: int
    dropped: int  # invalid + overflow + failed + lost + one per unparsable body
    invalid: int  # rows with impossible values (negative ids, bad ports, huge counters)
    bad_bodies: int  # frames whose body did not parse
    overflow: int
    db_errors: int
    db_available: bool  # False during an outage (a write failed or hangs)
    db_outages: int  # outages since start
    connections: int
    queue_depth: tuple[int, ...]  # pending rows per writer
    writers: tuple[WriterStats, ...]
    server: ServerStats | None = None  # the reactor's counters (None before start)
    threads: tuple[ThreadFailure, ...] = ()  # failed threads: dead or restarted (lars.threads)
    db_reached: bool = True  # False while the database has not answered once since start
    db_cause: str = ""  # why it is down (empty while up)


class ReporterService:
    """Owns the TCP server, its master loop, the writers and the engine."""

    def __init__(self, config: ReporterConfig) -> None:
        self.config = config
        self._engine: Engine | None = None
        self._writers: list[Writer] = []
        self._ring = HashRing(range(config.writers), vnodes=config.vnodes)
        # the daemon's threads report failures here: readiness names a dead one
        self.threads = ThreadHealth()
        self._master = LoopThread(
            "reporter-master", use_uvloop=config.reactor.use_uvloop, health=self.threads
        )
        router = Router()
        router.register(MsgId.REPORT_STATUS_REQUEST, self._on_report)
        self._server = TcpServer(
            config.reactor, router, name="reporter", master=self._master, health=self.threads
        )
        self._lock = threading.Lock()
        self._reports = 0
        self._invalid = 0
        self._log_invalid = RateLimitedLog(log)
        self._stats_timer: asyncio.TimerHandle | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        self.health = DbHealth(config.writers, stall_after=config.stall_after)
        self._last_logged: ReporterStats | None = None
        self._started = False

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> None:
        """Connect the store, start the writers and listen; returns once listening."""
        if self._started:
            raise RuntimeError("reporter already started")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        cfg = self.config
        engine = self._engine = make_engine(
            cfg.db_url,
            io_timeout=cfg.write_timeout,
            connect_timeout=cfg.connect_timeout,
            pool_size=max(5, cfg.writers + 2),
        )
        schema_ready = True
        try:
            init_schema(engine)
        except (SQLAlchemyError, StoreUnavailable) as exc:
            schema_ready = False
            log.warning("database unavailable at start (%s); writers will retry", exc)
            # down until a writer reaches it: /readyz and `lars status` say so
            self.health.down_at_start(time.monotonic(), _first_line(exc))
        self._writers = [
            Writer(
                i,
                engine,
                batch_rows=cfg.batch_rows,
                batch_interval=cfg.batch_interval,
                max_pending=cfg.max_pending,
                flush_timeout=cfg.flush_timeout,
                schema_ready=schema_ready,
                health=self.health,
                threads=self.threads,
            )
            for i in range(cfg.writers)
        ]
        for writer in self._writers:
            writer.start()
        self._master.start()
        self._server.start()
        if cfg.stats_interval > 0:
            self._master.call(self._schedule_stats).result()
        self._master.call(self._schedule_watch).result()
        log.info(
            "reporter on port %d: %d writers, batches of %d rows / %.0f ms",
            self.port,
            cfg.writers,
            cfg.batch_rows,
            cfg.batch_interval * 1000,
        )

    def stop(self) -> None:
        """Stop reading, flush every pending row to the database, release everything."""
        if not self._started:
            return
        self._started = False
        if self._master.running:
            self._master.call(self._cancel_stats).result()
        self._server.stop()
        for writer in self._writers:
            writer.stop()
        self._master.stop()
        self._log_stats(final=True)
        if self._engine is not None:
            self._engine.dispose()

    def reload(self, new: ReporterConfig, timeout: float = 10.0) -> ReloadResult:
        """Apply `stats_interval` of `new` (SIGHUP) on the master loop; every other
        change (listener, database, writers, batching) needs a restart."""
        result = split(diff(self.config, new), {"stats_interval"}.__contains__)
        if result.applied:
            self.config = replace(self.config, **result.values())
            if self._started and self._master.running:
                self._master.call(self._retime_stats).result(timeout)
        return result

    def _retime_stats(self) -> None:
        if self._stats_timer is not None:
            self._stats_timer.cancel()
            self._stats_timer = None
        if self.config.stats_interval > 0:
            self._schedule_stats()

    def stats(self) -> ReporterStats:
        writers = tuple(w.stats() for w in self._writers)
        with self._lock:
            reports, invalid = self._reports, self._invalid
        bad_bodies = self._server.router.bad_bodies
        overflow = sum(w.overflow for w in writers)
        server = self._server.stats() if self._server.workers else None
        return ReporterStats(
            reports=reports,
            received=sum(w.received for w in writers),
            written=sum(w.written for w in writers),
            batches=sum(w.batches for w in writers),
            coalesced=sum(w.coalesced for w in writers),
            dropped=invalid + overflow + bad_bodies + sum(w.failed + w.lost for w in writers),
            invalid=invalid,
            bad_bodies=bad_bodies,
            overflow=overflow,
            db_errors=sum(w.db_errors for w in writers),
            db_available=self.health.available,
            db_outages=self.health.outages,
            connections=server.connections if server is not None else 0,
            queue_depth=tuple(w.pending for w in writers),
            writers=writers,
            server=server,
            threads=self.threads.failures(),
            db_reached=self.health.reached,
            db_cause="" if self.health.available else self.health.cause,
        )

    # reactor loops

    def _on_report(self, conn: Any, _msgid: int, body: bytes) -> None:
        msg = parse_report(body)
        rows, bad = rows_from_report(msg)
        with self._lock:
            self._reports += 1
            if bad:
                self._invalid += bad
        if bad:
            self._log_invalid(
                "dropped %d invalid results from %s (modid %d cmdid %d)",
                bad,
                getattr(conn, "peer", conn),
                msg.modid,
                msg.cmdid,
            )
        if rows:
            self._writers[self._ring.node_for(msg.modid, msg.cmdid)].submit(rows)

    # master loop: periodic counters

    def _schedule_stats(self) -> None:
        self._stats_timer = self._master.loop.call_later(
            self.config.stats_interval, self._stats_tick
        )

    def _stats_tick(self) -> None:
        self._log_stats()
        self._schedule_stats()

    def _cancel_stats(self) -> None:
        for timer in (self._stats_timer, self._watch_timer):
            if timer is not None:
                timer.cancel()
        self._stats_timer = self._watch_timer = None

    # master loop: the watchdog of hanging writes

    def _schedule_watch(self) -> None:
        self._watch_timer = self._master.loop.call_later(WATCH_INTERVAL, self._watch_tick)

    def _watch_tick(self) -> None:
        self._schedule_watch()
        log_event(self.health.check(time.monotonic()))

    def _log_stats(self, *, final: bool = False) -> None:
        now = self.stats()
        last = self._last_logged
        idle = (0, 0, 0, 0, 0, 0, (0,) * len(now.queue_depth))
        if not final and _counters(now) == (_counters(last) if last is not None else idle):
            return  # nothing happened since the last line: an idle reporter stays quiet
        self._last_logged = now
        log.info(
            "%s: received %d (+%d) written %d (+%d) batches %d coalesced %d dropped %d "
            "(invalid %d, bad bodies %d, overflow %d) db errors %d queue %s",
            "final" if final else "stats",
            now.received,
            now.received - (last.received if last else 0),
            now.written,
            now.written - (last.written if last else 0),
            now.batches,
            now.coalesced,
            now.dropped,
            now.invalid,
            now.bad_bodies,
            now.overflow,
            now.db_errors,
            list(now.queue_depth),
        )


def _counters(s: ReporterStats) -> tuple[object, ...]:
    """What the periodic line reports, minus what moves without traffic."""
    return (s.received, s.written, s.batches, s.coalesced, s.dropped, s.db_errors,
            s.queue_depth)  # fmt: skip


def _first_line(exc: BaseException) -> str:
    """The error's first line (SQLAlchemy appends SQL and a link), at most 200 chars."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
