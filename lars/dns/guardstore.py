"""Where the route service keeps its guard state: the database and a local snapshot file.

The state (lars/routes/guardstate.py: the served table, the window baseline, the hold) is
written after every table served and every hold that begins or ends: to RouteGuardState
through the route service's write engine (so every route service of the database and
`lars route status`/`restore` and the console see it), and to a local file beside the
route service (`[dns] snapshot`), so a service that cannot write to the database, or
cannot read it at start, still knows its last good table. A save never fails the poll:
an error is counted and logged (rate-limited), the table stays served.

The state is read at start through the read engine (which may be a replica) and
written through the write engine only while `writable()` says so (lars.dns.writeaccess:
a route service on a read-only database without `--write-db` keeps the file alone).

At start `load()` takes the newer of the database's row and the file (by `saved_at`); the
file alone when the database cannot be read or has no row yet; a file of another
database (its URL differs) or a corrupt one is ignored, logged.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import sqlalchemy

from lars.errors import StoreUnavailable
from lars.ratelog import RateLimitedLog
from lars.routes.guardstate import GuardState, decode, encode, has_table, read_state, write_state

__all__ = ["GuardStateStore"]

log = logging.getLogger(__name__)


class GuardStateStore:
    """Loads and saves the guard state; used by the poller thread only."""

    def __init__(
        self,
        engine: sqlalchemy.Engine | None,
        path: Path | None,
        *,
        db: str = "",
        read_engine: sqlalchemy.Engine | None = None,
        writable: Callable[[], bool] = lambda: True,
    ) -> None:
        self._engine = engine  # the route service's write engine; None: file only
        # where the state is read at start (a replica may be read: issue 22); the write
        # engine when not given
        self._read_engine = read_engine if read_engine is not None else engine
        self._writable = writable  # lars.dns.writeaccess: False, the file alone is written
        self._path = path
        self._db = db
        self._table: bool | None = None  # RouteGuardState present (checked on first save)
        self._log_db = RateLimitedLog(log, 60.0, level=logging.WARNING)
        self._log_file = RateLimitedLog(log, 60.0, level=logging.WARNING)
        self.saves = 0
        self.db_failures = 0
        self.file_failures = 0

    @property
    def db(self) -> str:
        return self._db

    def load(self) -> GuardState | None:
        from_db, db_ok = self._load_db()
        from_file = self._load_file()
        if from_db is not None and from_file is not None:
            return from_db if from_db.saved_at >= from_file.saved_at else from_file
        if from_db is not None:
            return from_db
        if from_file is not None:
            log.warning(
                "dns: guard state taken from the snapshot file %s (%s): last good table "
                "version %d, %d modules, %d hosts",
                self._path,
                "the database has none" if db_ok else "the database could not be read",
                from_file.version,
                from_file.modules,
                from_file.hosts,
            )
        return from_file

    def save(self, state: GuardState) -> None:
        """Write the state to the file and the database; never raises."""
        data = encode(state)
        self.saves += 1
        if self._path is not None:
            try:
                _write_atomic(self._path, data)
            except OSError as exc:
                self.file_failures += 1
                self._log_file("dns: cannot write the guard snapshot file %s: %s", self._path, exc)
        if self._engine is not None and self._writable():
            try:
                if self._table is None:
                    self._table = has_table(self._engine)
                    if not self._table:
                        log.warning(
                            "dns: no RouteGuardState table: the guard state is kept in the "
                            "snapshot file only (`lars initdb` creates the table)"
                        )
                if self._table:
                    write_state(self._engine, state, data)
            except StoreUnavailable as exc:
                self.db_failures += 1
                self._table = None  # ask again next time
                self._log_db("dns: cannot write the guard state to the database: %s", exc)

    def _load_db(self) -> tuple[GuardState | None, bool]:
        if self._read_engine is None:
            return None, False
        try:
            return read_state(self._read_engine), True
        except StoreUnavailable as exc:
            log.warning("dns: cannot read the guard state from the database: %s", exc)
        except ValueError as exc:
            log.error("dns: the guard state in the database is unreadable, ignored: %s", exc)
            return None, True
        return None, False

    def _load_file(self) -> GuardState | None:
        if self._path is None:
            return None
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("dns: cannot read the guard snapshot file %s: %s", self._path, exc)
            return None
        try:
            state = decode(data)
        except ValueError as exc:
            log.error("dns: the guard snapshot file %s is unreadable, ignored: %s", self._path, exc)
            return None
        if state.db != self._db:
            log.warning(
                "dns: the guard snapshot file %s belongs to another database (%s), ignored",
                self._path,
                state.db,
            )
            return None
        return state


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the file and rename over it: a reader sees the old or the new file."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
