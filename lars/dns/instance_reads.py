"""Reads of RouteInstance, RouteInstanceMark and RouteInstanceGone shared by the route
table's load (lars.dns.store: InstanceCache reads only what changed since the last load)
and the registration writer (lars.dns.regstore), and whether the three tables exist at
all (an original Lars database, or one `lars initdb` has not updated, lacks them: then
nothing is registered, and the poll does not ask for the mark)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlalchemy
from sqlalchemy import Connection, select

from lars.db import route_instance, route_instance_gone, route_instance_mark
from lars.dns.instances import InstanceRow, Served
from lars.tablepresence import TablePresence

__all__ = [
    "InstanceCache",
    "InstancePresence",
    "instance_row",
    "read_mark",
    "read_served",
]

FULL_EVERY = 60.0  # seconds between full reads (well under regstore.GONE_KEEP, 600)

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


def read_served(conn: Connection) -> list[Served]:
    """Every RouteInstance row's module, host and state: all the route table needs."""
    return list(_served_by_id(conn, None).values())


def _served_by_id(conn: Connection, after: int | None) -> dict[int, Served]:
    t = route_instance.c
    query = select(t.id, t.modid, t.cmdid, t.serverip, t.serverport, t.passing)
    if after is not None:
        query = query.where(t.changed > after)
    return {
        int(i): Served(int(m), int(c), int(ip), int(p), bool(ok))
        for i, m, c, ip, p, ok in conn.execute(query)
    }


class InstanceCache:
    """The instances as of the last load, so the next load reads only what changed.

    Every registration write raises RouteInstanceMark and stamps the rows it inserts or
    changes with the new mark (`changed`), and the ids it deletes in RouteInstanceGone,
    in mark order (lars.dns.regstore), so within one snapshot whose mark is M the rows
    changed after the last load's mark L are those with changed > L, and the rows gone
    are RouteInstanceGone's with mark > L. A full read every FULL_EVERY seconds (and
    when the mark went backwards) keeps it honest. One per RouteStore, used by its
    poller thread only; `read` inside the load's snapshot, `commit` once it succeeded."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rows: dict[int, Served] = {}
        self._mark: int | None = None
        self._full_at = float("-inf")
        self._pending: tuple[dict[int, Served], int | None, float] | None = None
        self.full_reads = 0
        self.partial_reads = 0

    def read(self, conn: Connection, mark: int | None) -> list[Served]:
        now = self._clock()
        last = self._mark
        if last is None or mark is None or mark < last or now - self._full_at >= FULL_EVERY:
            rows = _served_by_id(conn, None)
            self._pending = (rows, mark, now)
            self.full_reads += 1
        elif mark == last:
            rows = self._rows
            self._pending = (rows, mark, self._full_at)
        else:
            rows = dict(self._rows)
            g = route_instance_gone.c
            for (gone,) in conn.execute(select(g.instance_id).where(g.mark > last)):
                rows.pop(int(gone), None)
            rows.update(_served_by_id(conn, last))  # after the gone: an id may be reused
            self._pending = (rows, mark, self._full_at)
            self.partial_reads += 1
        return list(rows.values())

    def commit(self) -> None:
        """The load that read succeeded: remember what it read."""
        if self._pending is not None:
            self._rows, self._mark, self._full_at = self._pending
            self._pending = None

    def forget(self) -> None:
        """The load failed: the next one reads in full."""
        self._pending = None
        self._mark = None


def read_mark(conn: Connection) -> int | None:
    value = conn.execute(
        select(route_instance_mark.c.mark).where(route_instance_mark.c.id == 1)
    ).scalar()
    return None if value is None else int(value)


class InstancePresence(TablePresence):
    """Do the three registration tables exist? (lars.tablepresence: remembered once
    found, asked again at most every `recheck` seconds while missing.)"""

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        *,
        recheck: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            engine,
            (route_instance, route_instance_mark, route_instance_gone),
            "registrations are not accepted or served",
            recheck=recheck,
            clock=clock,
        )
