"""Does a lars-only table exist? Asked of the database once found, else now and then.

Tables the original Lars schema lacks (RouteHostMeta, the registration tables) may be
missing from a DBA's database; the features that need them are then off, said once in
the log, until `lars initdb` creates them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import sqlalchemy

__all__ = ["TablePresence"]

log = logging.getLogger(__name__)


class TablePresence:
    """Do all `tables` exist? Remembered once found; while missing, asked again at most
    every `recheck` seconds (the first miss logged with `missing`, which says what is
    off). A database error propagates as SQLAlchemyError: each caller maps it as its
    other queries."""

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        tables: Sequence[sqlalchemy.Table],
        missing: str,
        *,
        recheck: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._tables = tuple(tables)
        self._missing = missing
        self._recheck = recheck
        self._clock = clock
        self._present = False
        self._checked_at: float | None = None
        self._logged = False

    @property
    def present(self) -> bool:
        """What the last `available()` found, without asking the database."""
        return self._present

    def available(self) -> bool:
        if self._present:
            return True
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._recheck:
            return False
        # asked before _checked_at is set: a concurrent first caller must not read the
        # "checked, missing" state while this one is still asking (drains refused)
        inspector = sqlalchemy.inspect(self._engine)
        present = all(inspector.has_table(t.name) for t in self._tables)
        self._checked_at = now
        self._present = present
        if not present and not self._logged:
            self._logged = True
            log.warning("no %s table: %s; `lars initdb` creates it", self._tables[0].name,
                        self._missing)  # fmt: skip
        return present
