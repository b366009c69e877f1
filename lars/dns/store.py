"""RouteStore: the route service's reads of RouteVersion, RouteData and RouteChange.

`load()` reads the version, every route and the change rows up to that version in ONE
consistent snapshot, so a DBA committing in the middle of a load can never give a table
newer or older than its version (spec section 6, our improvement):
- MySQL/MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT (InnoDB, REPEATABLE READ);
- SQLite: one explicit read transaction (BEGIN; WAL readers see one snapshot).
`delete_changes(ids)` deletes exactly the change rows a load returned, never rows a
DBA added after the load. Database errors surface as StoreUnavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy
from sqlalchemy import Connection, delete, select
from sqlalchemy.exc import SQLAlchemyError

from lars.db import route_change, route_data, route_version
from lars.dbengine import is_sqlite
from lars.errors import StoreUnavailable

__all__ = ["ChangeRow", "RouteStore", "Snapshot"]

_DELETE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ChangeRow:
    id: int
    modid: int
    cmdid: int
    version: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one consistent read returned."""

    version: int
    routes: list[tuple[int, int, int, int]]  # (modid, cmdid, serverip, serverport)
    changes: list[ChangeRow]  # rows with version <= `version`


class RouteStore:
    """Reads for the route service. One instance per service, used by its poller thread."""

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self._engine = engine
        self._sqlite = is_sqlite(engine)

    @property
    def engine(self) -> sqlalchemy.Engine:
        return self._engine

    def read_version(self) -> int:
        """The current RouteVersion (0 when the row is missing): the cheap poll."""
        try:
            with self._engine.connect() as conn:
                return _version(conn)
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc

    def load(self) -> Snapshot:
        """Version, routes and change rows <= version, in one consistent snapshot."""
        try:
            with self._engine.connect() as conn:
                if self._sqlite:
                    conn.exec_driver_sql("BEGIN")  # pysqlite starts none for SELECTs
                else:  # a server defaulting to READ COMMITTED would ignore the snapshot
                    conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                version = _version(conn)
                routes = [
                    (int(m), int(c), int(ip), int(p))
                    for m, c, ip, p in conn.execute(
                        select(
                            route_data.c.modid,
                            route_data.c.cmdid,
                            route_data.c.serverip,
                            route_data.c.serverport,
                        )
                    )
                ]
                changes = [
                    ChangeRow(int(i), int(m), int(c), int(v))
                    for i, m, c, v in conn.execute(
                        select(
                            route_change.c.id,
                            route_change.c.modid,
                            route_change.c.cmdid,
                            route_change.c.version,
                        )
                        .where(route_change.c.version <= version)
                        .order_by(route_change.c.id)
                    )
                ]
                conn.rollback()  # read-only: end the snapshot now
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return Snapshot(version, routes, changes)

    def delete_changes(self, ids: Sequence[int]) -> int:
        """Delete exactly these RouteChange rows; return how many were deleted."""
        deleted = 0
        try:
            with self._engine.begin() as conn:
                for start in range(0, len(ids), _DELETE_CHUNK):
                    chunk = list(ids[start : start + _DELETE_CHUNK])
                    result = conn.execute(delete(route_change).where(route_change.c.id.in_(chunk)))
                    deleted += result.rowcount
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return deleted


def _version(conn: Connection) -> int:
    value = conn.execute(select(route_version.c.version).where(route_version.c.id == 1)).scalar()
    return int(value or 0)


def _unavailable(exc: SQLAlchemyError) -> StoreUnavailable:
    cause = getattr(exc, "orig", None) or exc
    return StoreUnavailable(f"{type(cause).__name__}: {cause}")
