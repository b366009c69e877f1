"""Writer: one thread, one database connection, batched coalesced upserts in order.

The reactor hands rows over with `submit()`, which only touches the in-memory pending
buffer under a short lock, so it never waits for the database. The thread takes up to
`batch_rows` rows (after waiting at most `batch_interval` for a batch to fill) and
writes them as one multi-row upsert in one transaction. When the database fails, the
batch goes back into the buffer (newer rows of the same keys win) and the writer
retries with backoff; `stop()` flushes what is pending before the thread ends. Every
write is bracketed in the shared DbHealth, which logs an outage once with its cause
(also a write that hangs: the service's watchdog asks it) and the recovery once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from lars.dbengine import init_schema
from lars.errors import StoreUnavailable
from lars.obs.hist import SIZE_BUCKETS, Buckets, BucketSnapshot
from lars.ratelog import RateLimitedLog
from lars.reactor.backoff import BackoffFactory, backoff
from lars.reporter.health import DbHealth, log_event
from lars.reporter.pending import PendingRows, Row
from lars.reporter.upsert import BatchUpsert
from lars.threads import ThreadHealth

__all__ = ["Writer", "WriterStats"]

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0  # seconds between an idle writer's looks at a database not reached


@dataclass(frozen=True, slots=True)
class WriterStats:
    index: int
    received: int  # rows accepted into the buffer
    written: int  # rows upserted (committed)
    batches: int  # transactions committed
    coalesced: int  # rows replaced by a newer row of the same key before writing
    overflow: int  # rows refused: the buffer held max_pending keys
    failed: int  # rows the database rejected as invalid (batch dropped)
    lost: int  # rows still pending when stop() gave up on a dead database
    db_errors: int  # failed write attempts
    pending: int  # queue depth now
    last_commit: float | None = None  # clock time of the last committed batch
    batch_sizes: BucketSnapshot | None = None  # rows per committed batch
    commit_seconds: BucketSnapshot | None = None  # duration of each committed transaction


class Writer:
    """Owns one thread and one connection; `submit` may be called from any thread."""

    def __init__(
        self,
        index: int,
        engine: Engine,
        *,
        batch_rows: int = 1000,
        batch_interval: float = 0.05,
        max_pending: int = 100_000,
        flush_timeout: float = 10.0,
        schema_ready: bool = True,
        backoff_factory: BackoffFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        health: DbHealth | None = None,
        threads: ThreadHealth | None = None,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        self.index = index
        self._engine = engine
        self._upsert = BatchUpsert(engine)
        self._batch_rows = batch_rows
        self._batch_interval = batch_interval
        self._flush_timeout = flush_timeout
        self._backoff_factory = backoff_factory or (lambda: backoff(0.05, 2.0))
        self._clock = clock
        self.health = health or DbHealth(index + 1)
        self.threads = threads or ThreadHealth()
        self._cond = threading.Condition(threading.Lock())
        self._pending = PendingRows(max_pending)
        self._stopping = False
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self._schema_ready = schema_ready
        self._written = 0
        self._batches = 0
        self._failed = 0
        self._lost = 0
        self._db_errors = 0
        self._last_commit: float | None = None
        self._batch_sizes = Buckets(SIZE_BUCKETS)
        self._commit_seconds = Buckets()
        self._log_overflow = RateLimitedLog(log)
        self._log_db = RateLimitedLog(log, level=logging.DEBUG)  # health logs the outage

    # any thread

    def submit(self, rows: Iterable[Row]) -> int:
        """Queue rows (latest per key wins); return how many overflowed. Never blocks on I/O."""
        with self._cond:
            pending = self._pending
            was_empty = not pending
            refused = pending.add(rows)
            if was_empty or len(pending) >= self._batch_rows:
                self._cond.notify()
        if refused:
            self._log_overflow(
                "writer %d: %d rows held (max); %d rows dropped as overflow (total %d)",
                self.index,
                self._pending.held,
                refused,
                self._pending.overflow,
            )
        return refused

    def stats(self) -> WriterStats:
        with self._cond:
            p = self._pending.stats()
            return WriterStats(
                index=self.index,
                received=p.received,
                written=self._written,
                batches=self._batches,
                coalesced=p.coalesced + p.superseded,
                overflow=p.overflow,
                failed=self._failed,
                lost=self._lost,
                db_errors=self._db_errors,
                pending=p.pending,
                last_commit=self._last_commit,
                batch_sizes=self._batch_sizes.snapshot(),
                commit_seconds=self._commit_seconds.snapshot(),
            )

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"writer {self.index} already started")
        name = f"reporter-writer{self.index}"
        # supervised: a failure outside a transaction is logged and the loop restarted
        # with its pending rows (lars.threads), never a silently dead writer
        target = self.threads.target(name, self._run, stopping=self._stopped, restart=True)
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write every pending row (retrying up to flush_timeout), then end the thread."""
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            if not self._stopping:
                self._stopping = True
                self._stop_deadline = self._clock() + self._flush_timeout
            self._cond.notify()
        thread.join(self._flush_timeout + 30.0)
        if thread.is_alive():  # pragma: no cover - a database call hung past its timeouts
            log.error("writer %d did not stop in time", self.index)

    def _stopped(self) -> bool:
        with self._cond:
            return self._stopping

    # the writer thread

    def _run(self) -> None:
        delays: Iterator[float] | None = None
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                if not batch:  # idle while the database has not answered: look at it
                    self._probe()
                    continue
                try:
                    written = self._write(batch)
                except BaseException:  # the thread restarts: keep the rows for it
                    with self._cond:
                        self._pending.restore(batch)
                    raise
                if written:
                    with self._cond:
                        self._pending.done(len(batch))
                    delays = None
                    continue
                with self._cond:
                    self._pending.restore(batch)
                    if self._stopping and self._clock() >= self._stop_deadline:
                        self._give_up()
                        return
                delays = delays or self._backoff_factory()
                self._sleep(next(delays))
        finally:
            self._close_connection()

    def _next_batch(self) -> list[Row] | None:
        """Wait for rows; None once stopping with nothing left to write."""
        cond = self._cond
        pending = self._pending
        with cond:
            while not pending:
                if self._stopping:
                    return None
                if self._schema_ready:
                    cond.wait()
                    continue
                cond.wait(PROBE_INTERVAL)  # not reached since start or the last failure
                if not pending and not self._stopping:
                    return []
            if len(pending) < self._batch_rows and not self._stopping:
                deadline = self._clock() + self._batch_interval
                while len(pending) < self._batch_rows and not self._stopping:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        break
                    cond.wait(remaining)
            return pending.take(self._batch_rows)

    def _probe(self) -> None:
        """No rows to write and the database has not answered since start (or since the
        last failure): connect (creating missing tables), so readiness and `lars status`
        follow the database back without waiting for a report."""
        self.health.begin(self.index, self._clock())
        error: str | None = None
        try:
            self._connection()
        except (SQLAlchemyError, OSError, StoreUnavailable) as exc:
            self._close_connection()
            error = _short(exc)
            self._log_db("writer %d: database probe failed: %s", self.index, error)
        log_event(self.health.end(self.index, self._clock(), error))

    def _sleep(self, delay: float) -> None:
        """Back off before a retry. Only stop() cuts it short: submit() also notifies,
        and waking on every new row would retry the database once per report."""
        with self._cond:
            stopping = self._stopping
            if stopping:  # a flush retries faster, within its deadline
                delay = min(delay, 0.2, max(0.0, self._stop_deadline - self._clock()))
            end = self._clock() + delay
            while self._stopping == stopping:
                remaining = end - self._clock()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _give_up(self) -> None:
        lost = len(self._pending)
        self._lost += lost
        self._pending.done(len(self._pending.take(lost)))
        log.error(
            "writer %d: database still unavailable after %.1fs; %d pending rows lost",
            self.index,
            self._flush_timeout,
            lost,
        )

    def _write(self, batch: list[Row]) -> bool:
        """One transaction; True when committed or dropped as invalid, False to retry."""
        self.health.begin(self.index, self._clock())
        ok, error = self._transaction(batch)
        log_event(self.health.end(self.index, self._clock(), error))
        return ok

    def _transaction(self, batch: list[Row]) -> tuple[bool, str | None]:
        """(done, error): done False with the database's error when it must be retried."""
        started = self._clock()
        try:
            conn = self._connection()
            with conn.begin():
                self._upsert.execute(conn, batch)
        except (SQLAlchemyError, OSError, StoreUnavailable) as exc:  # init_schema: the latter
            self._db_errors += 1
            self._close_connection()
            if _is_data_error(exc):
                self._failed += len(batch)
                log.error(
                    "writer %d: database rejected a batch of %d rows; dropped: %s",
                    self.index,
                    len(batch),
                    exc,
                )
                return True, None
            self._schema_ready = False  # a missing table is created again on reconnect
            self._log_db(
                "writer %d: database write failed, %d rows kept for retry: %s",
                self.index,
                len(batch),
                _short(exc),
            )
            return False, _short(exc)
        except Exception:  # a bug, not the database: never let it kill the writer
            self._db_errors += 1
            self._failed += len(batch)
            self._close_connection()
            log.exception("writer %d: batch of %d rows dropped", self.index, len(batch))
            return True, None
        done = self._clock()
        self._commit_seconds.observe(done - started)
        self._batch_sizes.observe(len(batch))
        self._written += len(batch)
        self._batches += 1
        self._last_commit = done
        return True, None

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None:
            if not self._schema_ready:
                init_schema(self._engine)
                self._schema_ready = True
            conn = self._conn = self._engine.connect()
        return conn

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.invalidate()
            conn.close()
        except Exception:  # pragma: no cover - the connection is dead anyway
            log.debug("writer %d: closing a broken connection failed", self.index, exc_info=True)


def _is_data_error(exc: BaseException) -> bool:
    """Errors that a retry cannot fix: the rows themselves are unacceptable."""
    return isinstance(exc, DataError | IntegrityError)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
