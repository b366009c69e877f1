"""Reads of RouteInstance and RouteInstanceMark shared by the route table's load
(lars.dns.store) and the registration writer (lars.dns.regstore), and whether the two
tables exist at all (an original Lars database, or one `lars initdb` has not updated,
lacks them: then nothing is registered, and the poll does not ask for the mark)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlalchemy
from sqlalchemy import Connection, select

from lars.db import route_instance, route_instance_mark
from lars.dns.instances import InstanceRow, Served

__all__ = ["InstancePresence", "instance_row", "read_instances", "read_mark", "read_served"]

log = logging.getLogger(__name__)


def instance_row(r: sqlalchemy.Row[tuple[object, ...]]) -> InstanceRow:
    m = r._mapping
    return InstanceRow(
        id=int(m["id"]),
        modid=int(m["modid"]),
        cmdid=int(m["cmdid"]),
        ip=int(m["serverip"]),
        port=int(m["serverport"]),
        agent=str(m["agent"]),
        check=str(m["check_kind"]),
        passing=bool(m["passing"]),
        registered_at=int(m["registered_at"]),
        since=int(m["since"]),
        last_seen=int(m["last_seen"]),
    )


def read_instances(conn: Connection) -> list[InstanceRow]:
    """Every RouteInstance row, oldest first."""
    query = select(route_instance).order_by(route_instance.c.id)
    return [instance_row(r) for r in conn.execute(query)]


def read_served(conn: Connection) -> list[Served]:
    """Every RouteInstance row's module, host and state: all the route table needs."""
    t = route_instance.c
    query = select(t.modid, t.cmdid, t.serverip, t.serverport, t.passing)
    return [
        Served(int(m), int(c), int(ip), int(p), bool(ok)) for m, c, ip, p, ok in conn.execute(query)
    ]


def read_mark(conn: Connection) -> int | None:
    value = conn.execute(
        select(route_instance_mark.c.mark).where(route_instance_mark.c.id == 1)
    ).scalar()
    return None if value is None else int(value)


class InstancePresence:
    """Do both registration tables exist? Remembered once found; while missing, asked
    again at most every `recheck` seconds (the first miss is logged). A database error
    propagates as SQLAlchemyError: each caller maps it as its other queries."""

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        *,
        recheck: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._recheck = recheck
        self._clock = clock
        self._present = False
        self._checked_at: float | None = None
        self._logged = False

    def available(self) -> bool:
        if self._present:
            return True
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._recheck:
            return False
        self._checked_at = now
        inspector = sqlalchemy.inspect(self._engine)
        self._present = all(
            inspector.has_table(t.name) for t in (route_instance, route_instance_mark)
        )
        if not self._present and not self._logged:
            self._logged = True
            log.warning(
                "no %s table: registrations are not accepted or served; `lars initdb` creates it",
                route_instance.name,
            )
        return self._present
