"""RouteStore: the route service's reads of RouteVersion, RouteData and RouteChange.

`load()` reads the version, every route and the change rows up to that version in ONE
consistent snapshot, so a DBA committing in the middle of a load can never give a table
newer or older than its version (spec section 6, our improvement):
- MySQL/MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT (InnoDB, REPEATABLE READ);
- SQLite: one explicit read transaction (BEGIN; WAL readers see one snapshot).
`delete_changes(ids)` deletes exactly the change rows a load returned, never rows a
DBA added after the load. Database errors surface as StoreUnavailable.

`poll()` is the cheap question asked every poll interval, ONE statement and one round
trip: the version, the newest RouteChange id and (while a table is held) the newest
'release' row of RouteAudit. On MySQL it goes through an engine of its own with short
timeouts, autocommit (a REPEATABLE READ snapshot would hide new commits) and no pre-ping
or reset round trips, so a frozen database fails a poll within about a second.

The same snapshot reads RouteHostMeta (drain and weights, lars/routes/hostmeta.py) when the
table exists; without it (an original Lars database) `meta` is empty, logged once.

Registrations (issue 20): where RouteInstance exists, the poll also reads the one
RouteInstanceMark row (raised by every registration change of any route service), and
the load reads every instance in the same snapshot, plus, only when failing checks would
leave a module with no host (lars.dns.instances.endangered), the ServerCallStatus rows of
those hosts with a success reported in the last EVIDENCE_WINDOW seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy
from sqlalchemy import ColumnElement, Connection, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from lars.db import (
    route_audit,
    route_change,
    route_data,
    route_instance_mark,
    route_version,
    server_call_status,
)
from lars.dbengine import is_sqlite
from lars.dns.instance_reads import InstanceCache, InstancePresence, read_mark
from lars.dns.instances import EVIDENCE_WINDOW, HostKey, InstanceState, endangered
from lars.errors import StoreUnavailable
from lars.routes import hostmeta

__all__ = ["ChangeRow", "PollMark", "RouteStore", "Snapshot", "unavailable"]

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
    changes: list[ChangeRow]  # rows with version <= `version` (and id > the load's `after`)
    # The newest RouteChange id once `changes` are deleted (the rows left have a version
    # above `version` or an id up to `after`; None: no rows left): what the next poll
    # reads if nothing changed and this service cleans.
    change_mark: int | None = None
    # RouteHostMeta rows that differ from the defaults (modid, cmdid, ip, port, weight,
    # enabled); empty without the table
    meta: list[hostmeta.MetaRow] = field(default_factory=list)
    # RouteInstance rows (empty without the table), the mark read with them, the failing
    # hosts that recent successes keep served, and whether replies advertise
    # registrations (this route service accepts them)
    instances: Sequence[InstanceState] = field(default_factory=list)
    instance_mark: int | None = None
    evidence: frozenset[HostKey] = frozenset()
    registrations: bool = False
    # The newest RouteChange id of all (None: no rows): what the next poll reads if
    # nothing changed and nobody deletes change rows (a service that does not clean:
    # issue 22, a replica)
    change_max: int | None = None


@dataclass(frozen=True, slots=True)
class PollMark:
    """What one poll read."""

    version: int
    change_max: int | None  # the newest RouteChange id (None: no rows)
    release_id: int | None = None  # newest 'release' row after the hold row asked about
    instance_mark: int | None = None  # RouteInstanceMark (None: no row or no table)


class RouteStore:
    """Reads for the route service. One instance per service, used by its poller thread."""

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        *,
        poll_engine: sqlalchemy.Engine | None = None,
        write_engine: sqlalchemy.Engine | None = None,
        advertise: Callable[[], bool] = lambda: False,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._poll_engine = poll_engine if poll_engine is not None else engine
        self._write_engine = write_engine if write_engine is not None else engine  # deletes
        self._sqlite = is_sqlite(engine)
        self._meta = hostmeta.MetaPresence(engine)
        self._instances = InstancePresence(engine)
        self.instance_cache = InstanceCache()  # loads read only the changed instances
        self._advertise = advertise  # does this service accept registrations (now)?
        self._wall = wall

    @property
    def engine(self) -> sqlalchemy.Engine:
        return self._engine

    def read_version(self) -> int:
        """The current RouteVersion (0 when the row is missing)."""
        return self.poll().version

    def poll(self, release_after: int | None = None) -> PollMark:
        """Version and newest RouteChange id (and, with `release_after`, the newest
        'release' audit row with a larger id), in one statement."""
        columns = [
            select(route_version.c.version).where(route_version.c.id == 1).scalar_subquery(),
            select(func.max(route_change.c.id)).scalar_subquery(),
        ]
        if release_after is not None:
            columns.append(
                select(func.max(route_audit.c.id))
                .where(route_audit.c.id > release_after, route_audit.c.action == "release")
                .scalar_subquery()
            )
        try:
            # as the last load found it: the poll asks nothing but its one statement (a
            # catalog query here would wait on the long timeouts during an outage)
            with_mark = self._instances.present
            if with_mark:
                columns.append(
                    select(route_instance_mark.c.mark)
                    .where(route_instance_mark.c.id == 1)
                    .scalar_subquery()
                )
            with self._poll_engine.connect() as conn:
                row = conn.execute(select(*columns)).one()
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc
        release = row[2] if release_after is not None else None
        mark = row[-1] if with_mark else None
        return PollMark(
            int(row[0] or 0),
            None if row[1] is None else int(row[1]),
            None if release is None else int(release),
            None if mark is None else int(mark),
        )

    def load(self, after: int | None = None) -> Snapshot:
        """Version, routes and change rows <= version, in one consistent snapshot; with
        `after`, only the change rows with a larger id (the older ones were pushed)."""
        try:
            with_meta = self._meta.available()  # before the snapshot: it may ask the catalog
            with_instances = self._instances.available()
            registrations = with_instances and self._advertise()
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
                        .where(*_unread(version, after))
                        .order_by(route_change.c.id)
                    )
                ]
                left = route_change.c.version > version
                if after is not None:
                    left = left | (route_change.c.id <= after)
                mark, change_max = conn.execute(
                    select(
                        select(func.max(route_change.c.id)).where(left).scalar_subquery(),
                        select(func.max(route_change.c.id)).scalar_subquery(),
                    )
                ).one()
                meta = hostmeta.read_all(conn) if with_meta else []
                instances: Sequence[InstanceState] = []
                instance_mark = None
                evidence: frozenset[HostKey] = frozenset()
                if with_instances:
                    instance_mark = read_mark(conn)
                    instances = self.instance_cache.read(conn, instance_mark)
                    at_risk = endangered(routes, instances, meta)
                    if at_risk:
                        evidence = _evidence(conn, at_risk, int(self._wall()))
                conn.rollback()  # read-only: end the snapshot now
        except SQLAlchemyError as exc:
            self.instance_cache.forget()
            raise unavailable(exc) from exc
        self.instance_cache.commit()
        return Snapshot(
            version,
            routes,
            changes,
            None if mark is None else int(mark),
            meta=meta,
            instances=instances,
            instance_mark=instance_mark,
            evidence=evidence,
            registrations=registrations,
            change_max=None if change_max is None else int(change_max),
        )

    def delete_changes(self, ids: Sequence[int]) -> int:
        """Delete exactly these RouteChange rows; return how many were deleted."""
        deleted = 0
        try:
            with self._write_engine.begin() as conn:
                for start in range(0, len(ids), _DELETE_CHUNK):
                    chunk = list(ids[start : start + _DELETE_CHUNK])
                    result = conn.execute(delete(route_change).where(route_change.c.id.in_(chunk)))
                    deleted += result.rowcount
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc
        return deleted


def _unread(version: int, after: int | None) -> list[ColumnElement[bool]]:
    """The change rows a load returns: up to `version`, past `after`."""
    where = [route_change.c.version <= version]
    if after is not None:
        where.append(route_change.c.id > after)
    return where


def _evidence(
    conn: Connection, at_risk: dict[tuple[int, int], set[tuple[int, int]]], now: int
) -> frozenset[HostKey]:
    """The at-risk hosts that any caller reported a success for in the last
    EVIDENCE_WINDOW seconds (ServerCallStatus, the reporter's table)."""
    s = server_call_status.c
    found: set[HostKey] = set()
    modids = sorted({m for m, _c in at_risk})
    for start in range(0, len(modids), _DELETE_CHUNK):
        query = (
            select(s.modid, s.cmdid, s.ip, s.port)
            .where(
                s.modid.in_(modids[start : start + _DELETE_CHUNK]),
                s.ts >= now - EVIDENCE_WINDOW,
                s.succ_cnt > 0,
            )
            .distinct()
        )
        for m, c, ip, p in conn.execute(query):
            key = (int(m), int(c))
            if (int(ip), int(p)) in at_risk.get(key, ()):
                found.add((key[0], key[1], int(ip), int(p)))
    return frozenset(found)


def _version(conn: Connection) -> int:
    value = conn.execute(select(route_version.c.version).where(route_version.c.id == 1)).scalar()
    return int(value or 0)


def unavailable(exc: SQLAlchemyError) -> StoreUnavailable:
    cause = getattr(exc, "orig", None) or exc
    return StoreUnavailable(f"{type(cause).__name__}: {cause}")
