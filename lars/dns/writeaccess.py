"""Can this route service write? Asked once, before its writes, so none of them fails.

A route service may read a MySQL replica (read_only=1) or a database through a user with
SELECT only (issue 22). Every one of its writes (RouteChange cleaning, RouteAudit rows,
the guard state, registrations and leases) goes through ONE write engine: the
`--write-db` URL when given, else the read engine. `WriteAccess` asks that engine once,
at the first table load:

- MySQL/MariaDB: `SELECT @@read_only` (a replica: never written, even by a user whose
  SUPER privilege would let it, which would make the replica diverge), then
  `DELETE FROM RouteChange WHERE 1 = 0` in a transaction that is rolled back: it changes
  nothing, and a user without write privileges gets 1142 (command denied), a read-only
  server 1290, a missing privilege 1227/1044;
- SQLite: writable.

The verdict is logged once. Until it is known (the write database does not answer yet)
`writable` is False: nothing is written, nothing fails, and the next load asks again. A
write database that stops answering later is an outage of that engine (its writers count
and log it, rate-limited), not a change of verdict.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy
from sqlalchemy import delete, false, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from lars.db import route_change
from lars.dbengine import is_sqlite
from lars.ratelog import RateLimitedLog

__all__ = ["DENIED_CODES", "WriteAccess", "denied"]

log = logging.getLogger(__name__)

# MariaDB/MySQL errors that mean "this user or server may not write", never "try again":
# 1290 read-only server, 1142 command denied on a table, 1227 missing privilege,
# 1044 access denied to the database, 1036 table is read only.
DENIED_CODES = frozenset({1290, 1142, 1227, 1044, 1036})
_NO_SUCH_TABLE = 1146


def denied(exc: BaseException) -> int | None:
    """The error number when `exc` is a refusal to write (DENIED_CODES), else None."""
    code = _code(exc)
    return code if code in DENIED_CODES else None


def _code(exc: BaseException) -> int | None:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class WriteAccess:
    """The verdict on the write engine: None (not known yet), True or False.

    `probe()` runs on the poller thread; `writable` is read from any thread (one
    reference read of an immutable value)."""

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        *,
        separate: bool,
        where: str = "",
        snapshot: str = "",
    ) -> None:
        self._engine = engine
        self._separate = separate  # a --write-db engine (not the reads')
        self._where = where  # the write database's URL without password, for the log
        self._snapshot = snapshot  # the local snapshot file ("" none), for the log
        self._lock = threading.Lock()
        self._verdict: bool | None = None
        self.reason = ""  # why not writable (shown in /status)
        self._log_fail = RateLimitedLog(log, 60.0, level=logging.WARNING)

    @property
    def writable(self) -> bool:
        return self._verdict is True

    @property
    def known(self) -> bool:
        return self._verdict is not None

    @property
    def separate(self) -> bool:
        return self._separate

    def describe(self) -> str:
        """One word for /status: writable, read-only or unknown (not asked yet)."""
        if self._verdict is None:
            return "unknown"
        return "writable" if self._verdict else "read-only"

    def probe(self) -> bool | None:
        """Ask the write engine once (later calls return the verdict); None when it could
        not be asked (not reachable): asked again at the next call. Never raises."""
        with self._lock:
            if self._verdict is not None:
                return self._verdict
            try:
                verdict, reason = self._ask()
            except SQLAlchemyError as exc:
                if not self._separate:  # the reads' database: its outage is logged there
                    return None
                self._log_fail(
                    "dns: cannot ask the write database %s whether it may be written yet: %s "
                    "(nothing is written until it answers)",
                    self._where,
                    type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__,
                )
                return None
            self._verdict, self.reason = verdict, reason
        if not verdict:
            file = f"the local snapshot file {self._snapshot}" if self._snapshot else "memory"
            log.warning(
                "dns: the %sdatabase %s cannot be written by this route service (%s): "
                "guarding alone with %s, not accepting registrations, writing no audit rows "
                "and not cleaning RouteChange; give --write-db ([dns] write_db) the primary "
                "to share holds and accept registrations",
                "write " if self._separate else "",
                self._where,
                reason,
                file,
            )
        elif self._separate:
            log.info("dns: writes go to %s (--write-db)", self._where)
        return verdict

    def _ask(self) -> tuple[bool, str]:
        if is_sqlite(self._engine):
            return True, ""
        with self._engine.connect() as conn:
            if conn.execute(text("SELECT @@read_only")).scalar():
                return False, "read_only=1: a replica"
            conn.rollback()  # end the SELECT's autobegun transaction: begin() below needs none
            try:
                with conn.begin() as tx:
                    conn.execute(delete(route_change).where(false()))
                    tx.rollback()
            except DBAPIError as exc:
                code = _code(exc)
                if code in DENIED_CODES:
                    return False, "this user has no write privilege"
                if code != _NO_SUCH_TABLE:  # no RouteChange: nothing to clean, writable
                    raise
        return True, ""
