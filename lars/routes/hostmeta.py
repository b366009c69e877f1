"""RouteHostMeta: a host's weight, whether it is enabled (drain) and a note; lars only.

The original Lars programs never read this table, and RouteData, RouteVersion and
RouteChange stay exactly theirs: a host is drained or weighted by a row here, keyed by
(modid, cmdid, serverip, serverport), and a route version bump like any route edit
(RouteAdmin does both in one transaction). A host without a row has the defaults
(weight 1, enabled). A row applies to its host whenever the host is in RouteData; rows of
hosts that are not are ignored (`lars route del` removes a host's row with it).

An original Lars database has no RouteHostMeta table: `MetaPresence` then says so, logged
once, and every route is served as today (all enabled, weight 1); it looks again every
`recheck` seconds, so `lars initdb` run later takes effect without a restart.

The edits and their rules (drain, undrain, weight) are in lars/routes/hostedit.py; this
module reads and writes the rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy
from sqlalchemy import Connection, and_, delete, insert, select, update

from lars.db import route_host_meta
from lars.errors import ValidationError
from lars.protocol.weight import DEFAULT_WEIGHT
from lars.tablepresence import TablePresence

__all__ = [
    "DEFAULT_META",
    "NOTE_MAX",
    "HostId",
    "HostMeta",
    "MetaPresence",
    "MetaRow",
    "forget",
    "move",
    "read_all",
    "read_module",
    "validate_note",
    "write",
]

log = logging.getLogger(__name__)

NOTE_MAX = 255
_BY_MAX = 128
# (modid, cmdid, unsigned serverip, serverport, weight, enabled): what the route service reads
MetaRow = tuple[int, int, int, int, int, bool]
HostId = tuple[int, int]  # (unsigned serverip, serverport)


@dataclass(frozen=True, slots=True)
class HostMeta:
    weight: int = DEFAULT_WEIGHT
    enabled: bool = True
    note: str = ""
    updated_at: int = 0  # unix seconds of the last drain/undrain/weight edit
    updated_by: str = ""  # its actor


DEFAULT_META = HostMeta()


class MetaPresence(TablePresence):
    """Does the RouteHostMeta table exist? (lars.tablepresence: remembered once found,
    asked again at most every `recheck` seconds while missing, the first miss logged.)"""

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        *,
        recheck: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            engine,
            (route_host_meta,),
            "an original Lars database, every host is served enabled with weight 1, "
            "drain and weights are unavailable",
            recheck=recheck,
            clock=clock,
        )


def read_all(conn: Connection) -> list[MetaRow]:
    """Every row that differs from the defaults (weight 1, enabled)."""
    t = route_host_meta.c
    query = select(t.modid, t.cmdid, t.serverip, t.serverport, t.weight, t.enabled).where(
        sqlalchemy.or_(t.weight != DEFAULT_WEIGHT, t.enabled == sqlalchemy.false())
    )
    rows = conn.execute(query)
    return [(int(m), int(c), int(ip), int(p), int(w), bool(e)) for m, c, ip, p, w, e in rows]


def read_module(conn: Connection, modid: int, cmdid: int) -> dict[HostId, HostMeta]:
    t = route_host_meta.c
    rows = conn.execute(
        select(route_host_meta).where(and_(t.modid == modid, t.cmdid == cmdid))
    ).all()
    return {
        (int(r.serverip), int(r.serverport)): HostMeta(
            weight=int(r.weight),
            enabled=bool(r.enabled),
            note=str(r.note),
            updated_at=int(r.updated_at),
            updated_by=str(r.updated_by),
        )
        for r in rows
    }


def validate_note(note: object) -> str | None:
    """A note for a drain or weight edit: None (keep the old one) or at most NOTE_MAX
    printable characters."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise ValidationError(f"note must be text, got {note!r}")
    if len(note) > NOTE_MAX or any(
        ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in note
    ):
        raise ValidationError(f"note must be at most {NOTE_MAX} printable characters")
    return note.strip()


def _host_cond(modid: int, cmdid: int, uip: int, port: int) -> sqlalchemy.ColumnElement[bool]:
    t = route_host_meta.c
    return and_(t.modid == modid, t.cmdid == cmdid, t.serverip == uip, t.serverport == port)


def write(conn: Connection, modid: int, cmdid: int, uip: int, port: int, meta: HostMeta) -> None:
    """Set the host's row (the edit holds RouteAdmin's write lock: no upsert race)."""
    values = {
        "weight": meta.weight,
        "enabled": meta.enabled,
        "note": meta.note[:NOTE_MAX],
        "updated_at": meta.updated_at,
        "updated_by": meta.updated_by[:_BY_MAX],
    }
    cond = _host_cond(modid, cmdid, uip, port)
    if conn.execute(update(route_host_meta).where(cond).values(**values)).rowcount == 0:
        conn.execute(
            insert(route_host_meta).values(
                modid=modid, cmdid=cmdid, serverip=uip, serverport=port, **values
            )
        )


def forget(conn: Connection, modid: int, cmdid: int, host: HostId | None = None) -> None:
    """Remove the rows of one host (or of every host of the module, host None)."""
    t = route_host_meta.c
    cond = and_(t.modid == modid, t.cmdid == cmdid)
    if host is not None:
        cond = _host_cond(modid, cmdid, *host)
    conn.execute(delete(route_host_meta).where(cond))


def move(conn: Connection, modid: int, cmdid: int, old: HostId, new: HostId) -> None:
    """A replaced host keeps its weight, drain and note under its new address."""
    if old == new:
        return
    forget(conn, modid, cmdid, new)
    conn.execute(
        update(route_host_meta)
        .where(_host_cond(modid, cmdid, *old))
        .values(serverip=new[0], serverport=new[1])
    )
